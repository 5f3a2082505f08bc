//! `videoflix.v1.AuthService`.

use tonic::{Request, Response, Status};

use super::{
    authn::caller,
    context::client,
    pb::{self, auth_service_server::AuthService},
};
use crate::{
    domain::{Email, ProfileChange, Uid},
    error::AppError,
    service::{Accounts, IssuedTokens, Login},
    store::UserRecord,
};

/// The user an e-mailed link names (a malformed one is an invalid link, like a forged one).
fn link_uid(raw: &str) -> Result<Uid, AppError> {
    Uid::parse(raw).map_err(|_| AppError::InvalidLink)
}

/// gRPC face of [`Accounts`].
#[derive(Clone)]
pub struct AuthGrpc {
    accounts: Accounts,
    trust_proxy: bool,
}

impl AuthGrpc {
    /// Serves `accounts`; `trust_proxy` honours `X-Forwarded-For`.
    pub fn new(accounts: Accounts, trust_proxy: bool) -> Self {
        Self {
            accounts,
            trust_proxy,
        }
    }
}

/// The wire form of a user.
pub(crate) fn user_pb(user: &UserRecord) -> pb::User {
    pb::User {
        id: user.id.get(),
        email: user.email.clone(),
        phone: user.phone.clone(),
        address: user.address.clone(),
        is_guest: user.is_guest,
        is_superuser: user.is_superuser,
    }
}

fn tokens_pb(tokens: IssuedTokens) -> pb::TokenPair {
    pb::TokenPair {
        access_token: tokens.access,
        refresh_token: tokens.refresh,
        expires_in: i64::try_from(tokens.expires_in).unwrap_or(i64::MAX),
        token_type: "Bearer".into(),
    }
}

#[tonic::async_trait]
impl AuthService for AuthGrpc {
    async fn register(
        &self,
        request: Request<pb::RegisterRequest>,
    ) -> Result<Response<pb::RegisterResponse>, Status> {
        let client = client(&request, self.trust_proxy);
        let r = request.into_inner();
        let user = self
            .accounts
            .register(client, &r.email, &r.password, &r.confirm_password)
            .await?;
        Ok(Response::new(pb::RegisterResponse {
            user: Some(user_pb(&user)),
            message: "Registration successful. Please check your email to activate your account."
                .into(),
        }))
    }

    async fn activate_account(
        &self,
        request: Request<pb::ActivateAccountRequest>,
    ) -> Result<Response<pb::ActivateAccountResponse>, Status> {
        let r = request.into_inner();
        self.accounts.activate(link_uid(&r.uid)?, &r.token).await?;
        Ok(Response::new(pb::ActivateAccountResponse {
            message: "Your account has been activated. You can now log in.".into(),
        }))
    }

    async fn resend_activation(
        &self,
        request: Request<pb::ResendActivationRequest>,
    ) -> Result<Response<pb::ResendActivationResponse>, Status> {
        let client = client(&request, self.trust_proxy);
        let email = Email::parse(&request.into_inner().email).map_err(AppError::from)?;
        self.accounts.resend_activation(client, &email).await?;
        Ok(Response::new(pb::ResendActivationResponse {
            message: "If an inactive account exists for this email, a new activation link has \
                      been sent."
                .into(),
        }))
    }

    async fn login(
        &self,
        request: Request<pb::LoginRequest>,
    ) -> Result<Response<pb::LoginResponse>, Status> {
        let client = client(&request, self.trust_proxy);
        let r = request.into_inner();
        let login = Login::parse(&r.email, &r.password)?;
        let outcome = self.accounts.login(client, login, r.remember_me).await?;
        Ok(Response::new(pb::LoginResponse {
            tokens: Some(tokens_pb(outcome.tokens)),
            user: Some(user_pb(&outcome.user)),
        }))
    }

    async fn guest_login(
        &self,
        request: Request<pb::GuestLoginRequest>,
    ) -> Result<Response<pb::GuestLoginResponse>, Status> {
        let outcome = self
            .accounts
            .guest_login(client(&request, self.trust_proxy))
            .await?;
        Ok(Response::new(pb::GuestLoginResponse {
            tokens: Some(tokens_pb(outcome.tokens)),
            user: Some(user_pb(&outcome.user)),
        }))
    }

    async fn refresh_token(
        &self,
        request: Request<pb::RefreshTokenRequest>,
    ) -> Result<Response<pb::RefreshTokenResponse>, Status> {
        let client = client(&request, self.trust_proxy);
        let tokens = self
            .accounts
            .refresh(client, &request.into_inner().refresh_token)
            .await?;
        Ok(Response::new(pb::RefreshTokenResponse {
            tokens: Some(tokens_pb(tokens)),
        }))
    }

    async fn logout(
        &self,
        request: Request<pb::LogoutRequest>,
    ) -> Result<Response<pb::LogoutResponse>, Status> {
        let caller = caller(&request)?;
        let guest_deleted = self.accounts.logout(&caller).await?;
        Ok(Response::new(pb::LogoutResponse {
            message: if guest_deleted {
                "Logged out; the guest account was deleted."
            } else {
                "Logged out successfully."
            }
            .into(),
            guest_deleted,
        }))
    }

    async fn request_password_reset(
        &self,
        request: Request<pb::RequestPasswordResetRequest>,
    ) -> Result<Response<pb::RequestPasswordResetResponse>, Status> {
        let client = client(&request, self.trust_proxy);
        let email = Email::parse(&request.into_inner().email).map_err(AppError::from)?;
        self.accounts.request_password_reset(client, &email).await?;
        Ok(Response::new(pb::RequestPasswordResetResponse {
            message: "If an account exists for this email, a password reset link has been sent."
                .into(),
        }))
    }

    async fn confirm_password_reset(
        &self,
        request: Request<pb::ConfirmPasswordResetRequest>,
    ) -> Result<Response<pb::ConfirmPasswordResetResponse>, Status> {
        let r = request.into_inner();
        self.accounts
            .confirm_password_reset(
                link_uid(&r.uid)?,
                &r.token,
                &r.new_password,
                &r.confirm_new_password,
            )
            .await?;
        Ok(Response::new(pb::ConfirmPasswordResetResponse {
            message: "Your password has been reset. You can now log in with the new password."
                .into(),
        }))
    }

    async fn get_me(
        &self,
        request: Request<pb::GetMeRequest>,
    ) -> Result<Response<pb::GetMeResponse>, Status> {
        let caller = caller(&request)?;
        Ok(Response::new(pb::GetMeResponse {
            user: Some(user_pb(&caller.user)),
        }))
    }

    async fn update_me(
        &self,
        request: Request<pb::UpdateMeRequest>,
    ) -> Result<Response<pb::UpdateMeResponse>, Status> {
        let caller = caller(&request)?;
        let r = request.into_inner();
        let (phone, address) = match r.update_mask.as_ref().filter(|m| !m.paths.is_empty()) {
            Some(mask) => {
                let mut phone = None;
                let mut address = None;
                for path in &mask.paths {
                    match path.as_str() {
                        "phone" => phone = Some(r.phone.as_str()),
                        "address" => address = Some(r.address.as_str()),
                        _ => {
                            return Err(AppError::field(
                                "update_mask",
                                format!(
                                    "Unknown field {path:?}; only phone and address can be updated."
                                ),
                            )
                            .into());
                        }
                    }
                }
                (phone, address)
            }
            // Without a mask, proto3 cannot tell "unset" from "empty": update what is non-empty.
            None => (
                Some(r.phone.as_str()).filter(|s| !s.is_empty()),
                Some(r.address.as_str()).filter(|s| !s.is_empty()),
            ),
        };
        let change = ProfileChange::parse(phone, address).map_err(AppError::Validation)?;
        let user = self.accounts.update_me(&caller, change).await?;
        Ok(Response::new(pb::UpdateMeResponse {
            user: Some(user_pb(&user)),
        }))
    }
}
