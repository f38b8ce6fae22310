"""JWT authentication that also loads the caller's membership (their workspace and role)."""

from rest_framework_simplejwt.authentication import JWTAuthentication
from rest_framework_simplejwt.exceptions import AuthenticationFailed
from rest_framework_simplejwt.settings import api_settings

from apps.accounts.models import User


class MemberJWTAuthentication(JWTAuthentication):
    def get_user(self, validated_token):
        try:
            user_id = validated_token[api_settings.USER_ID_CLAIM]
        except KeyError as exc:
            raise AuthenticationFailed(
                "Token contained no recognizable user identification.", code="token_not_valid"
            ) from exc
        user = (
            User.objects.select_related("membership__workspace").filter(**{api_settings.USER_ID_FIELD: user_id}).first()
        )
        if user is None or not user.is_active:
            raise AuthenticationFailed("User not found or no longer active.", code="user_not_found")
        return user
