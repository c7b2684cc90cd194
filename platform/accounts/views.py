"""Sign-up page; login, logout and password reset are Django's own views (see urls.py)."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth import login
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from accounts.forms import SignupForm
from accounts.models import SignupMode
from accounts.selectors import signup_policy
from accounts.services import AccountInputError, account_create


def signup(request: HttpRequest) -> HttpResponse:
    mode = signup_policy().mode
    if request.user.is_authenticated:
        return redirect(settings.LOGIN_REDIRECT_URL)
    needs_invitation = mode == SignupMode.INVITATION
    form = SignupForm(request.POST or None, needs_invitation=needs_invitation)
    if mode != SignupMode.CLOSED and request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            user = account_create(
                username=data["username"],
                email=data["email"],
                password=data["password1"],
                display_name=data["display_name"],
                invitation_code=data.get("invitation", ""),
            )
        except AccountInputError as error:
            for field, messages in error.errors.items():
                target = {"password": "password1", "non_field_errors": None}.get(field, field)
                for message in messages:
                    form.add_error(target if target in form.fields else None, message)
        else:
            login(request, user, backend="django.contrib.auth.backends.ModelBackend")
            return redirect(settings.LOGIN_REDIRECT_URL)
    status = 400 if request.method == "POST" else 200
    return render(
        request,
        "registration/signup.html",
        {"form": form, "closed": mode == SignupMode.CLOSED, "needs_invitation": needs_invitation},
        status=status,
    )
