//! The caller's own profile.

use crate::{
    domain::{Address, Phone, ProfileChange},
    error::{AppError, AppResult},
    store::{ProfileUpdate, UserRecord},
};

use super::{Accounts, Caller};

impl Accounts {
    /// Updates phone and/or address.
    pub async fn update_me(&self, caller: &Caller, change: ProfileChange) -> AppResult<UserRecord> {
        let update = ProfileUpdate {
            phone: change.phone.map(Phone::into_inner),
            address: change.address.map(Address::into_inner),
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
