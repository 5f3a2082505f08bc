//! Account routes: `/register/`, `/activate-account/`, `/login/`, `/logout/`, password reset,
//! `/jwt/…` and `/api/me/`.

use axum::{
    Json,
    extract::State,
    http::StatusCode,
    response::{IntoResponse, Response},
};

use crate::{
    ApiError, ErrorBody, Gateway,
    call::{ApiJson, Forward},
    dto::{
        ActivateBody, EmailBody, JwtBody, JwtPair, LoginBody, LoginResponse, LogoutResponse,
        MessageResponse, NewPasswordBody, RefreshBody, RegisterBody, RegisterResponse,
        UpdateMeBody, UserDto,
    },
    pb,
};

type ApiResult<T> = Result<T, ApiError>;

/// An error of a legacy account path, with the original's statuses.
fn legacy(status: tonic::Status) -> ApiError {
    ApiError::from(status).legacy_account()
}

/// Register a new account; an activation link is e-mailed.
///
/// Rules beyond what the schema states (each a 400 naming its field): the password must not be
/// entirely numeric, a common password, or too similar to the e-mail; `confirm_password` must
/// equal `password`; the e-mail must not be registered already.
#[utoipa::path(
    post, path = "/register/", tag = "auth", request_body = RegisterBody,
    responses(
        (status = 201, description = "Account created (inactive)", body = RegisterResponse),
        (status = 400, description = "Invalid e-mail or password, or the e-mail is already registered (`type: [\"email\"]`)", body = ErrorBody),
        (status = 429, description = "Too many registrations from this address", body = ErrorBody),
    )
)]
pub(crate) async fn register(
    State(gw): State<Gateway>,
    fwd: Forward,
    ApiJson(body): ApiJson<RegisterBody>,
) -> ApiResult<(StatusCode, Json<RegisterResponse>)> {
    let r = gw
        .auth()
        .register(fwd.request(pb::RegisterRequest {
            email: body.email,
            password: body.password,
            confirm_password: body.confirm_password,
        }))
        .await
        .map_err(legacy)?
        .into_inner();
    let user = r.user.unwrap_or_default();
    Ok((
        StatusCode::CREATED,
        Json(RegisterResponse {
            id: user.id,
            email: user.email,
            message: r.message,
        }),
    ))
}

/// Activate an account with the `uid` and `token` of the e-mailed link.
///
/// Only the `uid` and `token` of a link this server mailed, unexpired and unused, activate an
/// account (400 `token` otherwise): no schema can state which strings those are.
#[utoipa::path(
    post, path = "/activate-account/", tag = "auth", request_body = ActivateBody,
    responses(
        (status = 200, description = "Activated", body = MessageResponse),
        (status = 400, description = "Invalid or expired link, or already active", body = ErrorBody),
    )
)]
pub(crate) async fn activate_account(
    State(gw): State<Gateway>,
    fwd: Forward,
    ApiJson(body): ApiJson<ActivateBody>,
) -> ApiResult<Json<MessageResponse>> {
    let r = gw
        .auth()
        .activate_account(fwd.request(pb::ActivateAccountRequest {
            uid: body.uid,
            token: body.token,
        }))
        .await
        .map_err(legacy)?
        .into_inner();
    Ok(Json(MessageResponse { message: r.message }))
}

/// Send a fresh activation link (same answer whether or not the account exists).
#[utoipa::path(
    post, path = "/resend-activation/", tag = "auth", request_body = EmailBody,
    responses(
        (status = 200, description = "Accepted", body = MessageResponse),
        (status = 400, description = "Invalid e-mail", body = ErrorBody),
        (status = 429, description = "Too many mails", body = ErrorBody),
    )
)]
pub(crate) async fn resend_activation(
    State(gw): State<Gateway>,
    fwd: Forward,
    ApiJson(body): ApiJson<EmailBody>,
) -> ApiResult<Json<MessageResponse>> {
    let r = gw
        .auth()
        .resend_activation(fwd.request(pb::ResendActivationRequest { email: body.email }))
        .await
        .map_err(legacy)?
        .into_inner();
    Ok(Json(MessageResponse { message: r.message }))
}

async fn do_login(gw: &Gateway, fwd: &Forward, body: LoginBody) -> ApiResult<LoginResponse> {
    let r = gw
        .auth()
        .login(fwd.request(pb::LoginRequest {
            email: body.email,
            password: body.password.unwrap_or_default(),
            remember_me: body.remember_me.unwrap_or(false),
        }))
        .await?
        .into_inner();
    Ok(LoginResponse::new(r.tokens, r.user))
}

/// Log in. `guest@videoflix.com` (with any or no password) logs in as a new guest.
///
/// Only an activated account's e-mail with its password logs in: a wrong pair is a 400
/// `credentials` (the same whether or not the e-mail exists), an inactive account a 400
/// `account`.
#[utoipa::path(
    post, path = "/login/", tag = "auth", request_body = LoginBody,
    responses(
        (status = 200, description = "Logged in", body = LoginResponse),
        (status = 400, description = "Invalid input, wrong e-mail or password (`type: [\"credentials\"]`), or account not activated", body = ErrorBody),
        (status = 429, description = "Too many failed logins", body = ErrorBody),
    )
)]
pub(crate) async fn login(
    State(gw): State<Gateway>,
    fwd: Forward,
    ApiJson(body): ApiJson<LoginBody>,
) -> ApiResult<Json<LoginResponse>> {
    do_login(&gw, &fwd, body)
        .await
        .map(Json)
        .map_err(ApiError::legacy_account)
}

/// Log in as a new temporary guest (deleted at logout or after 24 h).
#[utoipa::path(
    post, path = "/guest-login/", tag = "auth",
    responses(
        (status = 200, description = "Logged in as a guest", body = LoginResponse),
        (status = 429, description = "Too many guests from this address", body = ErrorBody),
    )
)]
pub(crate) async fn guest_login(
    State(gw): State<Gateway>,
    fwd: Forward,
) -> ApiResult<Json<LoginResponse>> {
    let r = gw
        .auth()
        .guest_login(fwd.request(pb::GuestLoginRequest {}))
        .await?
        .into_inner();
    Ok(Json(LoginResponse::new(r.tokens, r.user)))
}

/// Obtain an access/refresh pair (SimpleJWT-compatible).
///
/// Only an activated account's e-mail with its password gets tokens (401 `credentials` as
/// simplejwt answers, 400 for an inactive account).
#[utoipa::path(
    post, path = "/jwt/", tag = "auth", request_body = JwtBody,
    responses(
        (status = 200, description = "Tokens", body = JwtPair),
        (status = 400, description = "Invalid input or account not activated", body = ErrorBody),
        (status = 401, description = "Wrong e-mail or password", body = ErrorBody),
        (status = 429, description = "Too many failed logins", body = ErrorBody),
    )
)]
pub(crate) async fn jwt_create(
    State(gw): State<Gateway>,
    fwd: Forward,
    ApiJson(body): ApiJson<JwtBody>,
) -> ApiResult<Json<JwtPair>> {
    let login = do_login(
        &gw,
        &fwd,
        LoginBody {
            email: body.email,
            password: Some(body.password),
            remember_me: None,
            username: None,
        },
    )
    .await?;
    Ok(Json(JwtPair {
        access: login.token,
        refresh: login.refresh,
    }))
}

/// Rotate a refresh token. Reusing a spent refresh token revokes the whole session.
#[utoipa::path(
    post, path = "/jwt/refresh/", tag = "auth", request_body = RefreshBody,
    responses(
        (status = 200, description = "New tokens", body = JwtPair),
        (status = 400, description = "Missing refresh token", body = ErrorBody),
        (status = 401, description = "Invalid, spent or revoked refresh token", body = ErrorBody),
    )
)]
pub(crate) async fn jwt_refresh(
    State(gw): State<Gateway>,
    fwd: Forward,
    ApiJson(body): ApiJson<RefreshBody>,
) -> ApiResult<Json<JwtPair>> {
    let r = gw
        .auth()
        .refresh_token(fwd.request(pb::RefreshTokenRequest {
            refresh_token: body.refresh,
        }))
        .await?
        .into_inner();
    let tokens = r.tokens.unwrap_or_default();
    Ok(Json(JwtPair {
        access: tokens.access_token,
        refresh: tokens.refresh_token,
    }))
}

async fn do_logout(gw: &Gateway, fwd: &Forward) -> ApiResult<Response> {
    let r = gw
        .auth()
        .logout(fwd.request(pb::LogoutRequest {}))
        .await?
        .into_inner();
    if r.guest_deleted {
        return Ok(StatusCode::NO_CONTENT.into_response());
    }
    Ok(Json(LogoutResponse {
        ok: true,
        message: r.message,
    })
    .into_response())
}

/// Log out: the session and its tokens stop working at once; a guest account is deleted (204).
#[utoipa::path(
    delete, path = "/logout/", tag = "auth",
    security(("token" = []), ("bearer" = [])),
    responses(
        (status = 200, description = "Logged out", body = LogoutResponse),
        (status = 204, description = "Guest logged out and deleted"),
        (status = 401, description = "Missing, invalid or revoked token", body = ErrorBody),
    )
)]
pub(crate) async fn logout(State(gw): State<Gateway>, fwd: Forward) -> ApiResult<Response> {
    do_logout(&gw, &fwd).await
}

/// Log out (POST form, same as DELETE).
#[utoipa::path(
    post, path = "/logout/", tag = "auth",
    security(("token" = []), ("bearer" = [])),
    responses(
        (status = 200, description = "Logged out", body = LogoutResponse),
        (status = 204, description = "Guest logged out and deleted"),
        (status = 401, description = "Missing, invalid or revoked token", body = ErrorBody),
    )
)]
pub(crate) async fn logout_post(State(gw): State<Gateway>, fwd: Forward) -> ApiResult<Response> {
    do_logout(&gw, &fwd).await
}

/// Request a password-reset link (same answer whether or not the account exists).
#[utoipa::path(
    post, path = "/reset-password/", tag = "auth", request_body = EmailBody,
    responses(
        (status = 200, description = "Accepted", body = MessageResponse),
        (status = 400, description = "Invalid e-mail", body = ErrorBody),
        (status = 429, description = "Too many mails", body = ErrorBody),
    )
)]
pub(crate) async fn reset_password(
    State(gw): State<Gateway>,
    fwd: Forward,
    ApiJson(body): ApiJson<EmailBody>,
) -> ApiResult<Json<MessageResponse>> {
    let r = gw
        .auth()
        .request_password_reset(fwd.request(pb::RequestPasswordResetRequest { email: body.email }))
        .await
        .map_err(legacy)?
        .into_inner();
    Ok(Json(MessageResponse { message: r.message }))
}

/// Set a new password with the e-mailed link; every session of the account is revoked.
///
/// Rules beyond what the schema states: only the `uid` and `token` of a reset link this server
/// mailed, unexpired and unused, are accepted (400 `token`); the new password follows the
/// registration rules (not numeric, not common, not similar to the e-mail) and
/// `confirm_new_password` must equal it (400 naming the field).
#[utoipa::path(
    post, path = "/new-password/", tag = "auth", request_body = NewPasswordBody,
    responses(
        (status = 200, description = "Password changed", body = MessageResponse),
        (status = 400, description = "Invalid link or password", body = ErrorBody),
    )
)]
pub(crate) async fn new_password(
    State(gw): State<Gateway>,
    fwd: Forward,
    ApiJson(body): ApiJson<NewPasswordBody>,
) -> ApiResult<Json<MessageResponse>> {
    let r = gw
        .auth()
        .confirm_password_reset(fwd.request(pb::ConfirmPasswordResetRequest {
            uid: body.uid,
            token: body.token,
            new_password: body.new_password,
            confirm_new_password: body.confirm_new_password,
        }))
        .await
        .map_err(legacy)?
        .into_inner();
    Ok(Json(MessageResponse { message: r.message }))
}

/// The caller's profile.
#[utoipa::path(
    get, path = "/api/me/", tag = "me",
    security(("token" = []), ("bearer" = [])),
    responses(
        (status = 200, description = "Profile", body = UserDto),
        (status = 401, description = "Missing, invalid or revoked token", body = ErrorBody),
    )
)]
pub(crate) async fn get_me(State(gw): State<Gateway>, fwd: Forward) -> ApiResult<Json<UserDto>> {
    let r = gw
        .auth()
        .get_me(fwd.request(pb::GetMeRequest {}))
        .await?
        .into_inner();
    Ok(Json(r.user.unwrap_or_default().into()))
}

/// Change phone and/or address.
#[utoipa::path(
    patch, path = "/api/me/", tag = "me", request_body = UpdateMeBody,
    security(("token" = []), ("bearer" = [])),
    responses(
        (status = 200, description = "Updated profile", body = UserDto),
        (status = 400, description = "Invalid phone or address", body = ErrorBody),
        (status = 401, description = "Missing, invalid or revoked token", body = ErrorBody),
    )
)]
pub(crate) async fn update_me(
    State(gw): State<Gateway>,
    fwd: Forward,
    ApiJson(body): ApiJson<UpdateMeBody>,
) -> ApiResult<Json<UserDto>> {
    let mut paths = Vec::new();
    if body.phone.is_some() {
        paths.push("phone".to_owned());
    }
    if body.address.is_some() {
        paths.push("address".to_owned());
    }
    if paths.is_empty() {
        // Nothing to change: answer with the profile as it is.
        return get_me(State(gw), fwd).await;
    }
    let r = gw
        .auth()
        .update_me(fwd.request(pb::UpdateMeRequest {
            phone: body.phone.unwrap_or_default(),
            address: body.address.unwrap_or_default(),
            update_mask: Some(prost_types::FieldMask { paths }),
        }))
        .await?
        .into_inner();
    Ok(Json(r.user.unwrap_or_default().into()))
}
