from django.urls import path

from apps.accounts import api

urlpatterns = [
    path("auth/signup", api.SignupApi.as_view(), name="auth-signup"),
    path("auth/token", api.TokenObtainApi.as_view(), name="auth-token"),
    path("auth/token/refresh", api.TokenRefreshApi.as_view(), name="auth-token-refresh"),
    path("auth/token/verify", api.TokenVerifyApi.as_view(), name="auth-token-verify"),
    path("auth/logout", api.LogoutApi.as_view(), name="auth-logout"),
    path("me", api.MeApi.as_view(), name="me"),
    path("members", api.MemberListApi.as_view(), name="member-list"),
    path("members/<int:membership_id>", api.MemberDetailApi.as_view(), name="member-detail"),
]
