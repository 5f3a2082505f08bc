//! Small clients for a [`TestApp`]: REST requests and their [`Reply`], gRPC clients, and
//! accounts made and logged in over REST.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use videoflix::grpc::pb::{
    auth_service_client::AuthServiceClient, video_service_client::VideoServiceClient,
};

use super::TestApp;

/// A REST answer.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
    pub text: String,
}

impl Reply {
    /// Asserts the status and returns self, printing the body on mismatch.
    #[track_caller]
    pub fn expect(self, status: u16) -> Self {
        assert_eq!(
            self.status.as_u16(),
            status,
            "unexpected status; body: {}",
            self.text
        );
        self
    }

    /// Asserts the legacy error shape with this `type`.
    #[track_caller]
    pub fn expect_error(self, status: u16, kind: &str) -> Self {
        let me = self.expect(status);
        assert_eq!(me.body["type"], json!([kind]), "body: {}", me.text);
        assert!(
            me.body["message"].as_array().is_some_and(|m| !m.is_empty()),
            "body: {}",
            me.text
        );
        me
    }
}

impl TestApp {
    /// Waits (at most 10 s) until every mail the app queued was delivered or given up on.
    pub async fn mail_drained(&self) {
        tokio::time::timeout(
            std::time::Duration::from_secs(10),
            self.services.accounts.mailer().drained(),
        )
        .await
        .expect("the mail queue did not drain");
    }

    /// Sends a REST request; `token` goes out as `Authorization: Token …`.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
        token: Option<&str>,
    ) -> Reply {
        let mut request = self.http.request(method, format!("{}{path}", self.base));
        if let Some(token) = token {
            request = request.header("authorization", format!("Token {token}"));
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("request");
        let status = response.status();
        let headers = response.headers().clone();
        let text = response.text().await.expect("body");
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Reply {
            status,
            headers,
            body,
            text,
        }
    }

    pub async fn post(&self, path: &str, body: Value) -> Reply {
        self.call(Method::POST, path, Some(body), None).await
    }

    pub async fn get_auth(&self, path: &str, token: &str) -> Reply {
        self.call(Method::GET, path, None, Some(token)).await
    }

    /// A gRPC AuthService client.
    pub async fn auth_client(&self) -> AuthServiceClient<tonic::transport::Channel> {
        AuthServiceClient::connect(self.base.clone())
            .await
            .expect("grpc connect")
    }

    /// A gRPC VideoService client.
    pub async fn video_client(&self) -> VideoServiceClient<tonic::transport::Channel> {
        VideoServiceClient::connect(self.base.clone())
            .await
            .expect("grpc connect")
    }

    /// Registers `email` over REST, activates it from the mailed link, and returns a login
    /// token.
    pub async fn active_user(&self, email: &str, password: &str) -> String {
        self.post(
            "/register/",
            json!({"email": email, "password": password, "confirm_password": password}),
        )
        .await
        .expect(201);
        let mail = self.mail.wait_for(email, 1).await;
        let (uid, token) = mail.link_parts("activate-account");
        self.post("/activate-account/", json!({"uid": uid, "token": token}))
            .await
            .expect(200);
        self.login(email, password).await
    }

    /// Logs in over REST and returns the access token.
    pub async fn login(&self, email: &str, password: &str) -> String {
        let reply = self
            .post("/login/", json!({"email": email, "password": password}))
            .await
            .expect(200);
        reply.body["token"].as_str().expect("token").to_owned()
    }
}

/// Adds `authorization: Bearer …` to a gRPC request.
pub fn authed<T>(message: T, token: &str) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request.metadata_mut().insert(
        "authorization",
        format!("Bearer {token}").parse().expect("metadata"),
    );
    request
}

/// A strong password for tests.
pub const PASSWORD: &str = "Tr1cky-Horse-Battery";
