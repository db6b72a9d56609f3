"""The embedded demo behind `make run`: seed data, the fake WeChat, a demo relying party."""
