// Admin tabs over the AdminService: users (activate, deactivate, superuser, delete), scheduled
// jobs (last run, run now, change the schedule), exports (list, create, download) and import
// with its dry-run preview.

import { adminApi, describeError } from "../api.js";
import type { AdminUser, ImportVideoDataResponse, Job } from "../gen/videoflix/v1/admin_pb.js";
import { h, mount, notice } from "../ui.js";

type Status = ReturnType<typeof notice>;

async function act(status: Status, f: () => Promise<unknown>, done: string, reload: () => Promise<void>) {
  try {
    await f();
    status.show(done);
    await reload();
  } catch (err) {
    status.show(describeError(err), true);
  }
}

export async function usersTab(root: HTMLElement): Promise<void> {
  const status = notice();
  const search = h("input", { type: "search", placeholder: "Search e-mail" });
  const table = h("table", { class: "users" });
  const load = async () => {
    try {
      const r = await adminApi.listUsers({ search: search.value, pageSize: 100 });
      mount(table, h("tr", {}, ["E-mail", "Active", "Superuser", "Guest", "Last login", ""].map((t) => h("th", {}, t))), r.users.map(row));
    } catch (err) {
      status.show(describeError(err), true);
    }
  };
  const row = (u: AdminUser) =>
    h(
      "tr",
      {},
      h("td", {}, u.email),
      h("td", {}, u.isActive ? "yes" : "no"),
      h("td", {}, u.isSuperuser ? "yes" : "no"),
      h("td", {}, u.isGuest ? "yes" : "no"),
      h("td", {}, u.lastLogin || "never"),
      h(
        "td",
        {},
        h("button", { class: "secondary", onclick: () => act(status, () => adminApi.updateUser({ id: u.id, isActive: !u.isActive }), `${u.email} ${u.isActive ? "deactivated" : "activated"}.`, load) }, u.isActive ? "Deactivate" : "Activate"),
        " ",
        h("button", { class: "secondary", onclick: () => act(status, () => adminApi.updateUser({ id: u.id, isSuperuser: !u.isSuperuser }), `${u.email} updated.`, load) }, u.isSuperuser ? "Revoke superuser" : "Make superuser"),
        " ",
        h("button", { onclick: () => confirm(`Delete ${u.email}?`) && act(status, () => adminApi.deleteUser({ id: u.id }), `${u.email} deleted.`, load) }, "Delete"),
      ),
    );
  search.addEventListener("change", () => void load());
  root.append(h("h1", {}, "Users"), search, status, table);
  await load();
}

export async function jobsTab(root: HTMLElement): Promise<void> {
  const status = notice();
  const table = h("table", { class: "jobs" });
  const runs = h("table", { class: "runs" });
  const load = async () => {
    try {
      const [jobs, history] = await Promise.all([adminApi.listJobs({}), adminApi.listJobRuns({ limit: 20 })]);
      mount(table, h("tr", {}, ["Job", "Schedule", "Enabled", "Next due", "Last run", ""].map((t) => h("th", {}, t))), jobs.jobs.map(row));
      mount(
        runs,
        h("tr", {}, ["Job", "Trigger", "Started", "Outcome", "Message"].map((t) => h("th", {}, t))),
        history.runs.map((r) => h("tr", {}, [r.job, r.trigger, r.startedAt, r.outcome, r.message].map((t) => h("td", {}, t)))),
      );
    } catch (err) {
      status.show(describeError(err), true);
    }
  };
  const row = (j: Job) => {
    const schedule = h("input", { value: j.schedule, size: 16 });
    const last = j.lastRun ? `${j.lastRun.outcome} at ${j.lastRun.startedAt}` : "never";
    return h(
      "tr",
      {},
      h("td", {}, j.name),
      h("td", {}, schedule),
      h("td", {}, j.enabled ? "yes" : "no"),
      h("td", {}, j.nextDue || "—"),
      h("td", {}, last),
      h(
        "td",
        {},
        h("button", { class: "secondary", onclick: () => act(status, () => adminApi.updateJob({ name: j.name, schedule: schedule.value }), `${j.name}: schedule saved.`, load) }, "Save schedule"),
        " ",
        h("button", { class: "secondary", onclick: () => act(status, () => adminApi.updateJob({ name: j.name, enabled: !j.enabled }), `${j.name} ${j.enabled ? "disabled" : "enabled"}.`, load) }, j.enabled ? "Disable" : "Enable"),
        " ",
        h("button", { onclick: () => act(status, () => adminApi.runJob({ name: j.name }), `${j.name} ran.`, load) }, "Run now"),
      ),
    );
  };
  root.append(h("h1", {}, "Scheduled jobs"), status, table, h("h2", {}, "Recent runs"), runs);
  await load();
}

export async function exportsTab(root: HTMLElement): Promise<void> {
  const status = notice();
  const table = h("table", { class: "exports" });
  const full = h("input", { type: "checkbox" });
  const load = async () => {
    try {
      const r = await adminApi.listExports({});
      mount(
        table,
        h("tr", {}, ["File", "Size", "Written", "Kind", ""].map((t) => h("th", {}, t))),
        r.exports.map((e) =>
          h(
            "tr",
            {},
            h("td", {}, e.name),
            h("td", {}, `${(Number(e.bytes) / 1024).toFixed(1)} KiB`),
            h("td", {}, e.createdAt),
            h("td", {}, `${e.full ? "full" : "videos"}${e.scheduled ? ", scheduled" : ""}`),
            h("td", {}, h("button", { class: "secondary", onclick: () => download(e.name) }, "Download")),
          ),
        ),
      );
    } catch (err) {
      status.show(describeError(err), true);
    }
  };
  const download = async (name: string) => {
    try {
      const parts: BlobPart[] = [];
      for await (const chunk of adminApi.downloadExport({ name })) parts.push(chunk.data as Uint8Array<ArrayBuffer>);
      const a = h("a", { href: URL.createObjectURL(new Blob(parts, { type: "application/json" })), download: name });
      a.click();
      URL.revokeObjectURL(a.href);
    } catch (err) {
      status.show(describeError(err), true);
    }
  };
  const file = h("input", { type: "file", accept: "application/json,.json" });
  const preview = h("div", { class: "import-result" });
  const importFile = async (dryRun: boolean) => {
    const f = file.files?.[0];
    if (!f) return status.show("Choose an export file first.", true);
    try {
      const r = await adminApi.importVideoData({ data: new Uint8Array(await f.arrayBuffer()), dryRun });
      mount(preview, summary(r, dryRun));
    } catch (err) {
      status.show(describeError(err), true);
    }
  };
  root.append(
    h("h1", {}, "Exports"),
    h("p", {}, h("label", { class: "check" }, full, "Full (accounts, favorites, progress)"), " ",
      h("button", { onclick: () => act(status, () => adminApi.createExport({ full: full.checked }), "Export written.", load) }, "Create export")),
    status,
    table,
    h("h2", {}, "Import"),
    h("p", { class: "import" }, file, " ", h("button", { class: "secondary", onclick: () => importFile(true) }, "Preview (dry run)"), " ",
      h("button", { onclick: () => importFile(false) }, "Import")),
    preview,
  );
  await load();
}

function summary(r: ImportVideoDataResponse, dryRun: boolean): HTMLElement {
  const counts = (label: string, c?: { created: bigint; updated: bigint; unchanged: bigint }) =>
    c ? h("li", {}, `${label}: ${c.created} new, ${c.updated} changed, ${c.unchanged} unchanged`) : null;
  return h(
    "div",
    {},
    h("p", {}, !r.ok ? "The file has errors: nothing would be written." : r.applied ? "Imported." : dryRun ? "Dry run: this is what an import would do." : "Nothing written."),
    h("ul", {}, counts("Videos", r.videos), counts("Users", r.users), counts("Favorites", r.favorites), counts("Watch progress", r.watchProgress)),
    r.errors.length
      ? h("ul", { class: "errors" }, r.errors.map((e) => h("li", {}, `${e.section}[${e.index}] ${e.field}: ${e.reason}`)))
      : null,
  );
}
