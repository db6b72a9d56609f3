"""Signing in with WeChat: the mini-program's token exchange and phone binding, and the website's
QR-code login. Orchestration only: `idp.wechat` talks to WeChat, `idp.identity` decides which
account, `idp.oidc` issues the tokens."""
