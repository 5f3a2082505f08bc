//! The messages Videoflix sends, each as plain text and HTML.

/// A message with its link.
#[derive(Clone, Debug)]
pub enum Template {
    /// Account activation after registration (or on request).
    Activation {
        /// `{FRONTEND_URL}activate-account/{uid}/{token}/`
        link: String,
    },
    /// Password reset.
    PasswordReset {
        /// `{FRONTEND_URL}reset-password/{uid}/{token}/`
        link: String,
    },
}

impl Template {
    /// Subject line.
    pub fn subject(&self) -> &'static str {
        match self {
            Self::Activation { .. } => "Confirm your email",
            Self::PasswordReset { .. } => "Reset your password",
        }
    }

    /// The link the message carries.
    pub fn link(&self) -> &str {
        match self {
            Self::Activation { link } | Self::PasswordReset { link } => link,
        }
    }

    /// Plain-text body.
    pub fn text(&self) -> String {
        match self {
            Self::Activation { link } => format!(
                "Dear user,\n\nThank you for registering with Videoflix. To complete your \
                 registration and verify your email address, please open the link below:\n\n\
                 {link}\n\nIf you did not create an account with us, please disregard this \
                 email.\n\nBest regards,\n\nYour Videoflix Team\n"
            ),
            Self::PasswordReset { link } => format!(
                "Hello,\n\nWe recently received a request to reset your password. If you made \
                 this request, please open the following link to reset your password:\n\n\
                 {link}\n\nPlease note that for security reasons, this link is only valid for a \
                 limited time.\n\nIf you did not request a password reset, please ignore this \
                 email.\n\nBest regards,\n\nYour Videoflix Team\n"
            ),
        }
    }

    /// HTML body.
    pub fn html(&self) -> String {
        let (intro, button, outro) = match self {
            Self::Activation { .. } => (
                "Thank you for registering with <b>Videoflix</b>. To complete your registration \
                 and verify your email address, please click the button below:",
                "Activate account",
                "If you did not create an account with us, please disregard this email.",
            ),
            Self::PasswordReset { .. } => (
                "We recently received a request to reset your password. If you made this \
                 request, please click the button below to reset your password:",
                "Reset password",
                "This link is only valid for a limited time. If you did not request a password \
                 reset, please ignore this email.",
            ),
        };
        let link = html_escape(self.link());
        format!(
            "<!DOCTYPE html><html><body style=\"font-family:Arial,sans-serif;color:#222\">\
             <p>Dear user,</p><p>{intro}</p>\
             <p><a href=\"{link}\" style=\"display:inline-block;padding:12px 24px;\
             background:#2E3EDF;color:#fff;border-radius:24px;text-decoration:none\">{button}</a></p>\
             <p>Or copy this link into your browser: <br><a href=\"{link}\">{link}</a></p>\
             <p>{outro}</p><p>Best regards,<br>Your Videoflix Team</p></body></html>"
        )
    }
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_bodies_carry_the_link() {
        let t = Template::Activation {
            link: "http://x/activate-account/MQ/abc-123/".into(),
        };
        assert!(t.text().contains("http://x/activate-account/MQ/abc-123/"));
        assert!(
            t.html()
                .contains("href=\"http://x/activate-account/MQ/abc-123/\"")
        );
    }
}
