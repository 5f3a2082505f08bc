// The Videoflix web app: the header, the routes, and the session's guard (a page that needs an
// account sends a visitor, or a session that ended, to the login page).

import "./style.css";
import { authApi } from "./api.js";
import { href, navigate, route, start } from "./router.js";
import { onSessionChange, session, setSession } from "./session.js";
import { h, mount } from "./ui.js";
import { activatePage, forgotPage, loginPage, resetPage, signupPage } from "./views/auth.js";
import { catalogPage } from "./views/catalog.js";
import { playerPage } from "./views/player.js";

const signedIn = () => (session() ? null : "login");
const signedOut = () => (session() ? "" : null);
const admin = () => (!session() ? "login" : session()!.isSuperuser ? null : "");

route("login", loginPage, signedOut);
route("signup", signupPage, signedOut);
route("forgot-password", forgotPage);
route("activate-account/:uid/:token", activatePage);
route("reset-password/:uid/:token", resetPage);
route("", catalogPage, signedIn);
route("watch/:id", playerPage, signedIn);
// The admin console is its own chunk, loaded only by administrators.
route("admin", async (root, p) => (await import("./views/admin.js")).adminPage(root, p), admin);
route("admin/:tab", async (root, p) => (await import("./views/admin.js")).adminPage(root, p), admin);

const header = h("header", { class: "top" });
const main = h("main");
document.querySelector("#app")!.append(header, main);

function renderHeader(): void {
  const s = session();
  mount(
    header,
    h("a", { class: "logo", href: href(""), "data-link": true }, "Videoflix"),
    s
      ? h(
          "nav",
          {},
          h("a", { href: href(""), "data-link": true }, "Browse"),
          s.isSuperuser ? h("a", { href: href("admin"), "data-link": true }, "Admin") : null,
          h("span", { class: "who" }, s.isGuest ? "Guest" : s.email),
          h(
            "button",
            {
              class: "secondary logout",
              onclick: async () => {
                await authApi.logout({}).catch(() => {});
                setSession(null);
              },
            },
            "Log out",
          ),
        )
      : null,
  );
}

let wasSignedIn = !!session();
onSessionChange((s) => {
  renderHeader();
  // Logged out, or the session was revoked or expired: back to the login page.
  if (wasSignedIn && !s) navigate("login", true);
  wasSignedIn = !!s;
});
renderHeader();
start(main);
