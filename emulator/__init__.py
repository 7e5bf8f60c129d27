"""An Azure emulator for Log Analytics dedicated clusters, workspaces, links, BYOS and Key Vault.

It plays Azure for the real SDKs over HTTPS and shares no code with `controller/` (import-linter
independence contract), so it cannot inherit the product's assumptions. When Azure and this
emulator disagree, the emulator is wrong.
"""
