//! Password reset by e-mailed link.

use crate::{
    domain::{Email, Password, Uid},
    error::{AppError, AppResult},
    mail::Template,
    security::LinkPurpose,
};

use super::{Accounts, ClientInfo, reset_state};

impl Accounts {
    /// Mails a reset link if the account exists; the outcome is the same either way.
    #[tracing::instrument(skip_all)]
    pub async fn request_password_reset(&self, client: ClientInfo, email: &Email) -> AppResult<()> {
        self.limit_mail("reset", client, email).await?;
        if let Some(user) = self.store.user_by_email(email).await?
            && !user.is_guest
        {
            let token = self.tokens.issue_link(
                LinkPurpose::PasswordReset,
                user.user_id(),
                &reset_state(&user),
            );
            let link = self.link("reset-password", user.user_id(), &token);
            self.mailer
                .send_later(&user.email, Template::PasswordReset { link });
        }
        Ok(())
    }

    /// Sets a new password from a reset link and revokes every session of the account.
    #[tracing::instrument(skip_all)]
    pub async fn confirm_password_reset(
        &self,
        uid: Uid,
        token: &str,
        new_password: &str,
        confirm_new_password: &str,
    ) -> AppResult<()> {
        let user = self.user_from_link(uid).await?;
        if !self.tokens.verify_link(
            LinkPurpose::PasswordReset,
            user.user_id(),
            &reset_state(&user),
            token,
            self.reset_ttl,
        ) {
            return Err(AppError::InvalidLink);
        }
        let email = Email::parse(&user.email)?;
        let password = Password::new(
            new_password,
            confirm_new_password,
            &email,
            "new_password",
            "confirm_new_password",
        )?;
        let hash = self.hasher.hash(password.expose()).await?;
        // Guarded by the old hash: of two racing uses of one link, only the first wins.
        if !self
            .store
            .change_password(user.user_id(), &user.password_hash, &hash)
            .await?
        {
            return Err(AppError::InvalidLink);
        }
        self.sessions.invalidate_user(user.id).await;
        tracing::info!(user_id = %user.id, "password reset; sessions revoked");
        Ok(())
    }
}
