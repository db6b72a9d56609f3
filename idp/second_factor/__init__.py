"""Second factors: what proves a second time that the person signing in holds the account.

One package for every factor and every user of one, below its users (the website's sign-in step
and the account centre, the admin area, the mini-program's token exchange), so that none of them
reaches into another for a factor:

- `totp.py`: RFC 6238 itself (sealing the secret, enrolment, the QR code, a code accepted once);
- `factors.py`: an account's factors: its TOTP apps, listing, removing, the attempts throttle;
- `recovery_codes.py`: the codes for a lost factor, each spent once;
- `passkeys.py`: the WebAuthn ceremonies for a passkey or security key;
- `admin_totp.py`: the admins' TOTP, kept on the account row;
- `mfa_tokens.py`: the mini-program's sign-in waiting for its second factor (the `mfa_token`);
- `models.py`: their tables.

No views here: the pages and the grant that use a factor stay with their users
(`idp.account_centre.second_factor`, `idp.account_centre.passkeys`, `idp.admin.views.auth`,
`idp.wechat_login.mfa_exchange`).
"""
