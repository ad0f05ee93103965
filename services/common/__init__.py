"""What provider services share, and the only place they share it (besides `runtime`).

A provider imports from here, never from another provider: the assembly that builds
and runs a service (`app`), subject validation, the sandbox, upstream settings,
caller headers, answer shapes, and the Sécurité sociale gateway's request kit
(`api_secu`) that cnaf and c2s both speak.
"""
