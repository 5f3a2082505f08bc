//! Use cases, independent of the transport: both gRPC and (through gRPC) REST call these.

mod accounts;

pub use accounts::{Accounts, Caller, ClientInfo, GUEST_LOGIN_EMAIL, IssuedTokens, LoginOutcome};
