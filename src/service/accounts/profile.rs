//! The caller's own profile.

use crate::{
    domain::{Address, FieldError, Phone},
    error::{AppError, AppResult},
    store::{ProfileUpdate, UserRecord},
};

use super::{Accounts, Caller};

impl Accounts {
    /// Updates phone and/or address.
    pub async fn update_me(
        &self,
        caller: &Caller,
        phone: Option<&str>,
        address: Option<&str>,
    ) -> AppResult<UserRecord> {
        let phone = phone.map(Phone::parse);
        let address = address.map(Address::parse);
        let errors: Vec<FieldError> = [
            phone.as_ref().and_then(|p| p.as_ref().err().cloned()),
            address.as_ref().and_then(|a| a.as_ref().err().cloned()),
        ]
        .into_iter()
        .flatten()
        .collect();
        if !errors.is_empty() {
            return Err(AppError::Validation(errors));
        }
        let update = ProfileUpdate {
            phone: phone.and_then(Result::ok).map(Phone::into_inner),
            address: address.and_then(Result::ok).map(Address::into_inner),
        };
        let user = self
            .store
            .update_profile(caller.user.user_id(), &update)
            .await?
            .ok_or(AppError::NotFound("user"))?;
        self.sessions.invalidate_user(user.id).await;
        Ok(user)
    }
}
