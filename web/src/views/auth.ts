// Account pages: log in (remember me, guest), sign up, activation and password reset from the
// mailed links (`{FRONTEND_URL}activate-account/{uid}/{token}/`, `reset-password/…`).

import { authApi, describeError } from "../api.js";
import { href, navigate, type Page } from "../router.js";
import { sessionFrom, setSession } from "../session.js";
import { h, notice } from "../ui.js";

function field(label: string, name: string, type = "text", extra: Record<string, unknown> = {}) {
  return h("label", {}, label, h("input", { name, type, required: true, ...extra }));
}

function card(title: string, ...children: (Node | string)[]): HTMLElement {
  return h("section", { class: "card auth" }, h("h1", {}, title), ...children);
}

function value(form: HTMLFormElement, name: string): string {
  return (form.elements.namedItem(name) as HTMLInputElement).value;
}

/** Runs `action` (a form's submit or a button's click), showing its failure in `status`. */
function attempt(status: ReturnType<typeof notice>, action: () => Promise<void>) {
  return async (e: Event) => {
    e.preventDefault();
    try {
      await action();
    } catch (err) {
      status.show(describeError(err), true);
    }
  };
}

export const loginPage: Page = (root) => {
  const status = notice();
  const form = h(
    "form",
    {
      onsubmit: attempt(status, async () => {
        status.show("Logging in…");
        const remember = (form.elements.namedItem("remember") as HTMLInputElement).checked;
        const r = await authApi.login({
          email: value(form, "email"),
          password: value(form, "password"),
          rememberMe: remember,
        });
        setSession(sessionFrom(r.tokens!, r.user!, remember));
        navigate("");
      }),
    },
    field("E-mail", "email", "email", { autocomplete: "username" }),
    field("Password", "password", "password", { autocomplete: "current-password" }),
    h("label", { class: "check" }, h("input", { type: "checkbox", name: "remember" }), "Remember me"),
    h("button", { type: "submit" }, "Log in"),
  );
  const guest = h(
    "button",
    {
      class: "secondary",
      onclick: attempt(status, async () => {
        const r = await authApi.guestLogin({});
        setSession(sessionFrom(r.tokens!, r.user!, false));
        navigate("");
      }),
    },
    "Continue as guest",
  );
  root.append(
    card(
      "Log in",
      form,
      guest,
      status,
      h(
        "p",
        {},
        h("a", { href: href("signup"), "data-link": true }, "Sign up"),
        " · ",
        h("a", { href: href("forgot-password"), "data-link": true }, "Forgot password?"),
      ),
    ),
  );
};

export const signupPage: Page = (root) => {
  const status = notice();
  const form = h(
    "form",
    {
      onsubmit: attempt(status, async () => {
        const r = await authApi.register({
          email: value(form, "email"),
          password: value(form, "password"),
          confirmPassword: value(form, "confirm"),
        });
        form.remove();
        status.show(r.message || "Check your mail to activate your account.");
      }),
    },
    field("E-mail", "email", "email", { autocomplete: "username" }),
    field("Password", "password", "password", { autocomplete: "new-password" }),
    field("Confirm password", "confirm", "password", { autocomplete: "new-password" }),
    h("button", { type: "submit" }, "Sign up"),
  );
  root.append(
    card("Sign up", form, status, h("p", {}, h("a", { href: href("login"), "data-link": true }, "Log in"))),
  );
};

export const activatePage: Page = async (root, { uid, token }) => {
  const status = notice();
  root.append(card("Activate account", status, h("p", {}, h("a", { href: href("login"), "data-link": true }, "Log in"))));
  status.show("Activating…");
  try {
    const r = await authApi.activateAccount({ uid, token });
    status.show(r.message || "Your account is active: you can log in.");
    status.classList.add("activated");
  } catch (err) {
    status.show(describeError(err), true);
  }
};

export const forgotPage: Page = (root) => {
  const status = notice();
  const form = h(
    "form",
    {
      onsubmit: attempt(status, async () => {
        const r = await authApi.requestPasswordReset({ email: value(form, "email") });
        status.show(r.message || "If the account exists, a reset link is on its way.");
      }),
    },
    field("E-mail", "email", "email"),
    h("button", { type: "submit" }, "Send reset link"),
  );
  root.append(card("Forgot password", form, status));
};

export const resetPage: Page = (root, { uid, token }) => {
  const status = notice();
  const form = h(
    "form",
    {
      onsubmit: attempt(status, async () => {
        const r = await authApi.confirmPasswordReset({
          uid,
          token,
          newPassword: value(form, "password"),
          confirmNewPassword: value(form, "confirm"),
        });
        form.remove();
        status.show(r.message || "Your password is changed: log in with it.");
      }),
    },
    field("New password", "password", "password", { autocomplete: "new-password" }),
    field("Confirm new password", "confirm", "password", { autocomplete: "new-password" }),
    h("button", { type: "submit" }, "Set password"),
  );
  root.append(
    card("Reset password", form, status, h("p", {}, h("a", { href: href("login"), "data-link": true }, "Log in"))),
  );
};
