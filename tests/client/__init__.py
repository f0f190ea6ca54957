"""The client's verbs, watches and informers against the sandbox and fake servers."""
