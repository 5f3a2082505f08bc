//! Registration, activation and the activation mail.

use crate::{
    domain::{Email, FieldError, Password, Uid},
    error::{AppError, AppResult},
    mail::Template,
    ratelimit::Mode,
    security::LinkPurpose,
    store::{NewUser, UserRecord},
};

use super::{Accounts, ClientInfo, GUEST_LOGIN_EMAIL, activation_state};

impl Accounts {
    /// Creates an inactive account and mails its activation link.
    #[tracing::instrument(skip_all)]
    pub async fn register(
        &self,
        client: ClientInfo,
        email: &str,
        password: &str,
        confirm_password: &str,
    ) -> AppResult<UserRecord> {
        self.limiter
            .check(
                &format!("register:ip:{}", client.key()),
                self.limits.register,
                Mode::Consume,
            )
            .await?;
        let email = Email::parse(email);
        let mut errors: Vec<FieldError> = Vec::new();
        let password = match &email {
            Ok(email) => Password::new(
                password,
                confirm_password,
                email,
                "password",
                "confirm_password",
            )
            .map_err(|e| errors.extend(e.0))
            .ok(),
            Err(e) => {
                errors.push(e.clone());
                None
            }
        };
        let (Ok(email), Some(password), true) = (email, password, errors.is_empty()) else {
            return Err(AppError::Validation(errors));
        };
        if email.as_str() == GUEST_LOGIN_EMAIL
            || email
                .as_str()
                .rsplit_once('@')
                .is_some_and(|(_, domain)| domain.eq_ignore_ascii_case(&self.guest_domain))
        {
            return Err(AppError::field(
                "email",
                "This address is reserved for guest access; use your own e-mail address.",
            ));
        }
        let hash = self.hasher.hash(password.expose()).await?;
        let user = self
            .store
            .create_user(NewUser {
                email: &email,
                password_hash: &hash,
                is_active: false,
                is_superuser: false,
                is_guest: false,
            })
            .await?;
        tracing::info!(user_id = %user.id, "account registered");
        self.send_activation(&user);
        Ok(user)
    }

    /// Activates an account from its link.
    #[tracing::instrument(skip_all)]
    pub async fn activate(&self, uid: Uid, token: &str) -> AppResult<()> {
        let user = self.user_from_link(uid).await?;
        if !self.tokens.verify_link(
            LinkPurpose::Activation,
            user.user_id(),
            &activation_state(&user),
            token,
            self.activation_ttl,
        ) {
            return Err(AppError::InvalidLink);
        }
        if user.is_active || !self.store.activate_user(user.user_id()).await? {
            return Err(AppError::AlreadyActive);
        }
        tracing::info!(user_id = %user.id, "account activated");
        Ok(())
    }

    /// Sends a fresh activation link to an inactive account; silent otherwise.
    #[tracing::instrument(skip_all)]
    pub async fn resend_activation(&self, client: ClientInfo, email: &Email) -> AppResult<()> {
        self.limit_mail("activation", client, email).await?;
        if let Some(user) = self.store.user_by_email(email).await?
            && !user.is_active
            && !user.is_guest
        {
            self.send_activation(&user);
        }
        Ok(())
    }

    fn send_activation(&self, user: &UserRecord) {
        let token = self.tokens.issue_link(
            LinkPurpose::Activation,
            user.user_id(),
            &activation_state(user),
        );
        let link = self.link("activate-account", user.user_id(), &token);
        self.mailer
            .send_later(&user.email, Template::Activation { link });
    }
}
