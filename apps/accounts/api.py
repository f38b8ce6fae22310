"""Accounts API: sign-up, tokens, me, and team management."""

from collections.abc import Sequence

from django.http import Http404
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.throttling import BaseThrottle
from rest_framework.views import APIView
from rest_framework_simplejwt.exceptions import TokenError
from rest_framework_simplejwt.tokens import RefreshToken
from rest_framework_simplejwt.views import TokenObtainPairView, TokenRefreshView, TokenVerifyView

from apps.accounts import selectors, services
from apps.accounts.models import Membership, Role
from apps.accounts.permissions import IsManager, membership_of, membership_required, workspace_of
from apps.accounts.throttling import AccountRateThrottle, AddressRateThrottle
from project.api import created, error_response, paginated


def token_pair_for(user) -> dict:
    refresh = RefreshToken.for_user(user)
    return {"access": str(refresh.access_token), "refresh": str(refresh)}


class WorkspaceOutput(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    created_at = serializers.DateTimeField()


class UserOutput(serializers.Serializer):
    id = serializers.IntegerField()
    email = serializers.EmailField()
    full_name = serializers.CharField()


class MemberOutput(serializers.Serializer):
    id = serializers.IntegerField()
    role = serializers.CharField()
    created_at = serializers.DateTimeField()
    user = UserOutput()


class AuthThrottled:
    throttle_classes: Sequence[type[BaseThrottle]] = [AddressRateThrottle]


class SignupApi(AuthThrottled, APIView):
    authentication_classes: list = []
    permission_classes = [AllowAny]

    class SignupInputSerializer(serializers.Serializer):
        email = serializers.EmailField(max_length=254)
        password = serializers.CharField(max_length=128, trim_whitespace=False)
        workspace_name = serializers.CharField(max_length=200)
        full_name = serializers.CharField(max_length=200, required=False, default="")

    class SignupOutputSerializer(serializers.Serializer):
        workspace = WorkspaceOutput()
        user = UserOutput()
        role = serializers.CharField()
        access = serializers.CharField()
        refresh = serializers.CharField()

    @extend_schema(request=SignupInputSerializer, responses={201: SignupOutputSerializer})
    def post(self, request):
        data = self.SignupInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        membership = services.workspace_signup(**data.validated_data)
        body = {
            "workspace": membership.workspace,
            "user": membership.user,
            "role": membership.role,
            **token_pair_for(membership.user),
        }
        return created(self.SignupOutputSerializer(body).data)


class TokenObtainApi(TokenObtainPairView):
    throttle_classes = [AddressRateThrottle, AccountRateThrottle]


class TokenRefreshApi(AuthThrottled, TokenRefreshView):
    pass


class TokenVerifyApi(AuthThrottled, TokenVerifyView):
    pass


class LogoutApi(APIView):
    class LogoutInputSerializer(serializers.Serializer):
        refresh = serializers.CharField()

    @extend_schema(request=LogoutInputSerializer, responses={204: None})
    def post(self, request):
        data = self.LogoutInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            token = RefreshToken(data.validated_data["refresh"])
        except TokenError as exc:
            raise serializers.ValidationError({"refresh": [str(exc)]}) from exc
        if str(token.get("user_id")) != str(request.user.pk):
            raise serializers.ValidationError({"refresh": ["This refresh token is not yours."]})
        token.blacklist()
        return Response(status=status.HTTP_204_NO_CONTENT)


class MeApi(APIView):
    class MeOutputSerializer(serializers.Serializer):
        user = UserOutput()
        workspace = WorkspaceOutput()
        role = serializers.CharField()
        membership_id = serializers.IntegerField(source="id")

    @extend_schema(responses=MeOutputSerializer)
    def get(self, request):
        return Response(self.MeOutputSerializer(membership_of(request)).data)


class MemberListApi(APIView):
    """GET: any member lists the team. POST: owners and admins add someone."""

    class MemberListInputSerializer(serializers.Serializer):
        email = serializers.EmailField(max_length=254)
        password = serializers.CharField(max_length=128, trim_whitespace=False)
        role = serializers.ChoiceField(choices=Role.choices, default=Role.AGENT)
        full_name = serializers.CharField(max_length=200, required=False, default="")

    def get_permissions(self):
        return [IsManager()] if self.request.method == "POST" else super().get_permissions()

    @extend_schema(responses=MemberOutput(many=True))
    def get(self, request):
        members = selectors.membership_list(workspace=workspace_of(request))
        return paginated(request, self, members, MemberOutput)

    @extend_schema(request=MemberListInputSerializer, responses={201: MemberOutput})
    def post(self, request):
        data = self.MemberListInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        membership = services.member_add(actor=membership_of(request), **data.validated_data)
        return created(MemberOutput(membership).data)


class MemberDetailApi(APIView):
    permission_classes = [IsManager]

    class MemberDetailInputSerializer(serializers.Serializer):
        role = serializers.ChoiceField(choices=Role.choices)

    def _get(self, request, membership_id: int) -> Membership:
        try:
            return selectors.membership_get(workspace=workspace_of(request), membership_id=membership_id)
        except Membership.DoesNotExist as exc:
            raise Http404 from exc

    @extend_schema(request=MemberDetailInputSerializer, responses=MemberOutput)
    def patch(self, request, membership_id: int):
        membership = self._get(request, membership_id)  # another workspace's id is a 404 before anything else
        data = self.MemberDetailInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        membership = services.member_change_role(
            actor=membership_required(request), membership=membership, **data.validated_data
        )
        return Response(MemberOutput(membership).data)

    @extend_schema(
        responses={
            204: None,
            400: error_response("Only an owner can remove an owner, and a workspace keeps one (`invalid`)."),
        }
    )
    def delete(self, request, membership_id: int):
        services.member_remove(actor=membership_required(request), membership=self._get(request, membership_id))
        return Response(status=status.HTTP_204_NO_CONTENT)
