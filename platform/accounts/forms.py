"""The sign-up form: it only parses input; accounts.services decides."""

from __future__ import annotations

from typing import Any

from django import forms

from accounts.services import DISPLAY_NAME_MAX


class SignupForm(forms.Form):
    username = forms.CharField(max_length=150)
    email = forms.EmailField()
    display_name = forms.CharField(
        max_length=DISPLAY_NAME_MAX, required=False, help_text="Shown with your runs."
    )
    password1 = forms.CharField(label="Password", widget=forms.PasswordInput, strip=False)
    password2 = forms.CharField(label="Password again", widget=forms.PasswordInput, strip=False)
    invitation = forms.CharField(max_length=64, required=False, label="Invitation code")

    def __init__(self, *args: Any, needs_invitation: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if needs_invitation:
            self.fields["invitation"].required = True
        else:
            del self.fields["invitation"]

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if cleaned.get("password1") != cleaned.get("password2"):
            self.add_error("password2", "The two passwords differ.")
        return cleaned
