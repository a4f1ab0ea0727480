"""evidence: incidents across cameras, exported as signed bundles anyone can verify without vigil.

Imports core, storage and playback; the API and the `vigil` command use it.
"""
