//! The console's HTML: whole pages, the fragments the page script swaps
//! in when it refreshes, and the sign-in page. Plain `format!` with every
//! value escaped ([`esc`]); no inline script or style (the CSP forbids
//! both), so the bars are SVG shapes sized by attributes.

use std::fmt::Write;

use hybrid_api::extension::Extension;
use hybrid_api::{Condition, NodePool, Operation, OperationStatus, PhysicalHost};

use super::snapshot::{ClusterView, Snapshot, Usage, VnetView};

/// The console's pages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Page {
    Sites,
    Hosts,
    Networks,
    Operations,
    Audit,
}

impl Page {
    pub const ALL: [Page; 5] = [
        Page::Sites,
        Page::Hosts,
        Page::Networks,
        Page::Operations,
        Page::Audit,
    ];

    /// The page's address.
    pub fn path(self) -> &'static str {
        match self {
            Page::Sites => "/",
            Page::Hosts => "/console/hosts",
            Page::Networks => "/console/networks",
            Page::Operations => "/console/operations",
            Page::Audit => "/console/audit",
        }
    }

    /// The name in fragment addresses (`/console/fragment/{slug}`).
    pub fn slug(self) -> &'static str {
        match self {
            Page::Sites => "sites",
            Page::Hosts => "hosts",
            Page::Networks => "networks",
            Page::Operations => "operations",
            Page::Audit => "audit",
        }
    }

    pub fn from_slug(slug: &str) -> Option<Page> {
        Page::ALL.into_iter().find(|p| p.slug() == slug)
    }

    fn title(self) -> &'static str {
        match self {
            Page::Sites => "Sites and clusters",
            Page::Hosts => "Hosts",
            Page::Networks => "Networks",
            Page::Operations => "Operations",
            Page::Audit => "Audit",
        }
    }
}

/// Escapes text for HTML content and attribute values.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn head(title: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <meta name=\"referrer\" content=\"no-referrer\">\
         <title>{} · hybrid-host</title>\
         <link rel=\"stylesheet\" href=\"/console/static/console.css\"></head>",
        esc(title)
    )
}

/// A whole page: navigation, the unreachable-service banner (hidden until
/// the script needs it) and the page's fragment.
pub fn page(page: Page, snap: &Snapshot, replica: &str) -> String {
    let mut nav = String::new();
    for p in Page::ALL {
        let current = if p == page {
            " aria-current=\"page\""
        } else {
            ""
        };
        let _ = write!(
            nav,
            "<a href=\"{}\"{current}>{}</a>",
            p.path(),
            esc(p.title())
        );
    }
    let label = if snap.simulated {
        format!("driver {} (simulated datacenter)", snap.driver)
    } else {
        format!("driver {}", snap.driver)
    };
    format!(
        "{head}<body data-page=\"{slug}\">\
         <header><strong>hybrid-host</strong> <span class=\"muted\">{label} · replica {replica}</span>\
         <nav>{nav}</nav>\
         <form method=\"post\" action=\"/console/logout\"><button type=\"submit\">Sign out</button></form></header>\
         <div id=\"banner\" class=\"banner\" role=\"alert\" hidden></div>\
         <main id=\"content\">{content}</main>\
         <footer class=\"muted\">Read-only console. Refreshes every few seconds; last update <span id=\"updated\">now</span>.</footer>\
         <script src=\"/console/static/console.js\"></script></body></html>",
        head = head(page.title()),
        slug = page.slug(),
        label = esc(&label),
        replica = esc(replica),
        content = fragment(page, snap),
    )
}

/// The refreshable part of a page.
pub fn fragment(page: Page, snap: &Snapshot) -> String {
    match page {
        Page::Sites => sites(snap),
        Page::Hosts => hosts(snap),
        Page::Networks => networks(snap),
        Page::Operations => operations(&snap.operations),
        Page::Audit => audit(snap),
    }
}

/// The sign-in page: how to get a link, and why the last one failed.
pub fn sign_in(problem: Option<&str>) -> String {
    let problem = problem
        .map(|p| format!("<p class=\"error\" role=\"alert\">{}</p>", esc(p)))
        .unwrap_or_default();
    format!(
        "{head}<body data-page=\"sign-in\"><main class=\"narrow\" id=\"sign-in\">\
         <h1>Sign in to the hybrid-host console</h1>{problem}\
         <p>The console opens with a one-time link. On the machine that runs hybrid-host, run</p>\
         <pre>hybrid-host console-link --data-dir DATA_DIR</pre>\
         <p>and open the link it prints within five minutes. Each link works once; \
         a session lasts eight hours (or what the service's \
         --console-session-seconds says) or until you sign out.</p></main></body></html>",
        head = head("Sign in"),
    )
}

/// What a redeemed link answers: the session cookie comes with it, and
/// this page moves on to `/` (a same-site navigation, so the
/// `SameSite=Strict` cookie goes with it even when the link was clicked
/// in another site) and drops the ticket from the address bar.
pub fn signed_in() -> String {
    format!(
        "{head}<body><main class=\"narrow\">\
         <p>Signed in. <a href=\"/\">Open the console</a>.</p></main></body></html>",
        head = head("Signed in").replace(
            "</head>",
            "<meta http-equiv=\"refresh\" content=\"0;url=/\"></head>"
        ),
    )
}

fn state_class(state: &str) -> &'static str {
    match state {
        "Succeeded" | "Running" | "Ready" | "Up" | "Installed" | "True" => "ok",
        "Failed" | "Down" | "NotReady" | "Canceled" | "False" => "bad",
        _ => "busy",
    }
}

fn badge(state: &str) -> String {
    format!(
        "<span class=\"badge {}\">{}</span>",
        state_class(state),
        esc(state)
    )
}

fn conditions(cs: &[Condition]) -> String {
    let mut out = String::new();
    for c in cs.iter().filter(|c| c.status != "True") {
        let _ = write!(
            out,
            "<div class=\"condition\">{}: {} {}</div>",
            esc(&c.type_),
            esc(&c.reason),
            esc(&c.message)
        );
    }
    out
}

fn sites(snap: &Snapshot) -> String {
    let mut out = String::from("<h1>Sites and clusters</h1>");
    if snap.sites.is_empty() && snap.orphans.is_empty() {
        out.push_str("<p class=\"empty\">No custom locations yet.</p>");
    }
    for site in &snap.sites {
        let l = &site.location;
        let _ = write!(
            out,
            "<section class=\"site\" data-site=\"{name}\"><h2>Site {name} {state}</h2>\
             <p class=\"muted\">namespace {ns} · {n} cluster(s)</p>",
            name = esc(&l.name),
            state = badge(l.provisioning_state.as_str()),
            ns = esc(&l.spec.namespace),
            n = site.clusters.len(),
        );
        if site.clusters.is_empty() {
            out.push_str("<p class=\"empty\">No clusters in this site.</p>");
        }
        for c in &site.clusters {
            out.push_str(&cluster(c));
        }
        out.push_str("</section>");
    }
    if !snap.orphans.is_empty() {
        out.push_str("<section class=\"site\"><h2>Clusters of removed sites</h2>");
        for c in &snap.orphans {
            out.push_str(&cluster(c));
        }
        out.push_str("</section>");
    }
    out.push_str("<h2>Management host extensions</h2>");
    out.push_str(&extensions(&snap.host_extensions));
    out
}

fn cluster(v: &ClusterView) -> String {
    let c = &v.cluster;
    let version = c
        .status
        .current_kubernetes_version
        .as_deref()
        .or(c.spec.kubernetes_version.as_deref())
        .unwrap_or("-");
    let mut out = format!(
        "<article class=\"cluster\" data-cluster=\"{name}\"><h3>Cluster {name} {state}</h3>\
         <p class=\"muted\">Kubernetes {version} · endpoint {endpoint} · vnet {vnet} · {cp} control-plane VM(s)</p>{conds}",
        name = esc(&c.name),
        state = badge(c.provisioning_state.as_str()),
        version = esc(version),
        endpoint = esc(c.status.endpoint.as_deref().unwrap_or("-")),
        vnet = esc(&c.spec.vnet_id),
        cp = c.spec.control_plane.count,
        conds = conditions(&c.status.conditions),
    );
    if v.pools.is_empty() {
        out.push_str("<p class=\"empty\">No node pools.</p>");
    }
    for p in &v.pools {
        out.push_str(&pool(p));
    }
    out.push_str("<h4>Extensions</h4>");
    out.push_str(&extensions(&v.extensions));
    out.push_str("</article>");
    out
}

fn pool(p: &NodePool) -> String {
    let mut out = format!(
        "<div class=\"pool\" data-pool=\"{name}\"><h4>Pool {name} {state}</h4>\
         <p class=\"muted\">{os} · {size} · {n} node(s){auto}</p>{conds}\
         <table><thead><tr><th>Node</th><th>Address</th><th>Host</th><th>State</th><th>Kubernetes</th></tr></thead><tbody>",
        name = esc(&p.name),
        state = badge(p.provisioning_state.as_str()),
        os = esc(p.spec.os_type.as_str()),
        size = esc(p.spec.vm_size.as_deref().unwrap_or("-")),
        n = p.status.nodes.len(),
        auto = p
            .spec
            .auto_scaling
            .as_ref()
            .map(|a| format!(" · autoscaling {}–{}", a.min_count, a.max_count))
            .unwrap_or_default(),
        conds = conditions(&p.status.conditions),
    );
    for n in &p.status.nodes {
        let _ = write!(
            out,
            "<tr data-node=\"{name}\"><td>{name}</td><td>{ip}</td><td>{host}</td><td>{state}</td><td>{version}</td></tr>",
            name = esc(&n.name),
            ip = esc(n.ip.as_deref().unwrap_or("-")),
            host = esc(&n.host),
            state = badge(&n.state),
            version = esc(&n.kubernetes_version),
        );
    }
    out.push_str("</tbody></table></div>");
    out
}

fn extensions(es: &[Extension]) -> String {
    if es.is_empty() {
        return "<p class=\"empty\">None.</p>".to_string();
    }
    let mut out = String::from(
        "<table><thead><tr><th>Extension</th><th>Type</th><th>Version</th><th>State</th><th>Messages</th></tr></thead><tbody>",
    );
    for e in es {
        let messages: Vec<String> = e
            .status
            .statuses
            .iter()
            .map(|s| format!("{}: {}", s.code, s.message))
            .collect();
        let _ = write!(
            out,
            "<tr data-extension=\"{name}\"><td>{name}</td><td>{ty}</td><td>{version}</td><td>{state}</td><td>{messages}</td></tr>",
            name = esc(&e.name),
            ty = esc(&e.spec.extension_type),
            version = esc(e
                .current_version
                .as_deref()
                .or(e.spec.version.as_deref())
                .unwrap_or("-")),
            state = badge(e.provisioning_state.as_str()),
            messages = esc(&messages.join("; ")),
        );
    }
    out.push_str("</tbody></table>");
    out
}

/// A horizontal bar of `parts` (class, amount) out of `total`, as SVG
/// (sized by attributes: the CSP allows no inline style).
fn bar(parts: &[(&str, u64)], total: u64, label: &str) -> String {
    let mut out = format!(
        "<svg class=\"bar\" viewBox=\"0 0 1000 16\" preserveAspectRatio=\"none\" role=\"img\" aria-label=\"{}\"><rect class=\"track\" width=\"1000\" height=\"16\"/>",
        esc(label)
    );
    let mut x = 0u64;
    for (class, amount) in parts {
        let w = if total == 0 {
            0
        } else {
            (amount * 1000).div_ceil(total).min(1000 - x.min(1000))
        };
        let _ = write!(
            out,
            "<rect class=\"{class}\" x=\"{x}\" width=\"{w}\" height=\"16\"/>"
        );
        x += w;
    }
    out.push_str("</svg>");
    out
}

fn hosts(snap: &Snapshot) -> String {
    let mut out = String::from("<h1>Hosts</h1>");
    if let Some(e) = &snap.hosts_error {
        let _ = write!(
            out,
            "<p class=\"error\">The datacenter's inventory did not answer: {}</p>",
            esc(e)
        );
    }
    for h in &snap.hosts {
        out.push_str(&host(h, snap));
    }
    out
}

fn host(h: &PhysicalHost, snap: &Snapshot) -> String {
    let cpu = format!(
        "vCPU {} of {} allocated",
        h.allocated.vcpus, h.capacity.vcpus
    );
    let mem = format!(
        "memory {} of {} MiB allocated",
        h.allocated.memory_mib, h.capacity.memory_mib
    );
    let mut out = format!(
        "<section class=\"host\" data-host=\"{name}\"><h2>{name} {state}</h2>\
         <div class=\"meter\"><span>{cpu_l}</span>{cpu_b}</div>\
         <div class=\"meter\"><span>{mem_l}</span>{mem_b}</div>\
         <table><thead><tr><th>VM</th><th>Cluster</th><th>Role</th><th>Address</th><th>Size</th><th>Phase</th></tr></thead><tbody>",
        name = esc(&h.name),
        state = badge(&h.state),
        cpu_l = esc(&cpu),
        cpu_b = bar(
            &[("used", u64::from(h.allocated.vcpus))],
            u64::from(h.capacity.vcpus),
            &cpu
        ),
        mem_l = esc(&mem),
        mem_b = bar(
            &[("used", h.allocated.memory_mib)],
            h.capacity.memory_mib,
            &mem
        ),
    );
    for name in &h.vms {
        match snap.vms.iter().find(|v| &v.name == name) {
            Some(v) => {
                let _ = write!(
                    out,
                    "<tr data-vm=\"{name}\"><td>{name}</td><td>{cluster}</td><td>{role}{pool}</td><td>{ip}</td><td>{size}</td><td>{phase}</td></tr>",
                    name = esc(&v.name),
                    cluster = esc(&v.cluster),
                    role = esc(v.role.as_str()),
                    pool = v
                        .pool
                        .as_deref()
                        .map(|p| format!(" ({})", esc(p)))
                        .unwrap_or_default(),
                    ip = esc(v.ip.as_deref().unwrap_or("-")),
                    size = esc(&v.vm_size),
                    phase = badge(v.phase.as_str()),
                );
            }
            // A VM the datacenter runs but the service did not place.
            None => {
                let _ = write!(
                    out,
                    "<tr data-vm=\"{name}\"><td>{name}</td><td colspan=\"5\" class=\"muted\">not placed by this service</td></tr>",
                    name = esc(name)
                );
            }
        }
    }
    if h.vms.is_empty() {
        out.push_str("<tr><td colspan=\"6\" class=\"empty\">No VMs.</td></tr>");
    }
    out.push_str("</tbody></table></section>");
    out
}

fn usage(title: &str, u: Option<Usage>) -> String {
    let Some(u) = u else {
        return format!(
            "<div class=\"meter\"><span>{}: no pool</span></div>",
            esc(title)
        );
    };
    let label = format!(
        "{title}: {} in use, {} reserved (upgrade surge, API reservations), {} free of {}",
        u.in_use, u.reserved, u.free, u.size
    );
    let warn = if u.size > 0 && u.free * 10 < u.size {
        " low"
    } else {
        ""
    };
    format!(
        "<div class=\"meter{warn}\"><span>{}</span>{}</div>",
        esc(&label),
        bar(
            &[("used", u.in_use), ("reserved", u.reserved)],
            u.size,
            &label
        )
    )
}

fn networks(snap: &Snapshot) -> String {
    let mut out = String::from(
        "<h1>Networks</h1><p class=\"legend\"><span class=\"swatch used\"></span>in use \
         <span class=\"swatch reserved\"></span>reserved <span class=\"swatch track\"></span>free</p>",
    );
    if snap.vnets.is_empty() {
        out.push_str("<p class=\"empty\">No vnets yet.</p>");
    }
    for VnetView {
        vnet,
        vm_pool,
        vip_pool,
    } in &snap.vnets
    {
        let _ = write!(
            out,
            "<section class=\"vnet\" data-vnet=\"{name}\"><h2>{name} {state}</h2>\
             <p class=\"muted\">{prefix} · gateway {gw} · VLAN {vlan}</p>{vm}{vip}</section>",
            name = esc(&vnet.name),
            state = badge(vnet.provisioning_state.as_str()),
            prefix = esc(&vnet.spec.address_prefix),
            gw = esc(vnet.spec.gateway.as_deref().unwrap_or("-")),
            vlan = vnet
                .spec
                .vlan_id
                .map_or_else(|| "-".to_string(), |v| v.to_string()),
            vm = usage("VM addresses", *vm_pool),
            vip = usage("VIPs", *vip_pool),
        );
    }
    out
}

fn operations(ops: &[Operation]) -> String {
    let mut out = String::from("<h1>Operations</h1>");
    let running: Vec<&Operation> = ops
        .iter()
        .filter(|o| o.status == OperationStatus::Running)
        .collect();
    out.push_str("<h2>Running</h2>");
    if running.is_empty() {
        out.push_str("<p class=\"empty\">Nothing running.</p>");
    } else {
        out.push_str(&operation_table(&running));
    }
    out.push_str("<h2>Recent (newest first)</h2>");
    let all: Vec<&Operation> = ops.iter().collect();
    if all.is_empty() {
        out.push_str("<p class=\"empty\">No operations yet.</p>");
    } else {
        out.push_str(&operation_table(&all));
    }
    out
}

fn operation_table(ops: &[&Operation]) -> String {
    let mut out = String::from(
        "<table><thead><tr><th>Started</th><th>Kind</th><th>Target</th><th>Status</th><th>Last change</th><th>Request id</th><th>Error</th></tr></thead><tbody>",
    );
    for o in ops {
        let error = o
            .error
            .as_ref()
            .map(|e| format!("{}: {}", e.code, e.message))
            .unwrap_or_default();
        let _ = write!(
            out,
            "<tr data-operation=\"{id}\"><td>{created}</td><td>{kind}</td><td>{target}</td><td>{status}</td><td>{updated}</td><td><code>{rid}</code></td><td class=\"error\">{error}</td></tr>",
            id = esc(&o.id),
            created = esc(&o.created_at),
            kind = esc(&o.kind),
            target = esc(&o.target),
            status = badge(o.status.as_str()),
            updated = esc(&o.updated_at),
            rid = esc(o.request_id.as_deref().unwrap_or("-")),
            error = esc(&error),
        );
    }
    out.push_str("</tbody></table>");
    out
}

fn audit(snap: &Snapshot) -> String {
    let mut out = String::from(
        "<h1>Audit</h1><p class=\"muted\">Credential issuances (kubeconfigs), newest first.</p>",
    );
    if snap.audit.is_empty() {
        out.push_str("<p class=\"empty\">No audit records yet.</p>");
        return out;
    }
    out.push_str(
        "<table><thead><tr><th>Time</th><th>Actor</th><th>Action</th><th>Target</th><th>Details</th></tr></thead><tbody>",
    );
    for a in &snap.audit {
        let _ = write!(
            out,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td><code>{}</code></td></tr>",
            esc(&a.time),
            esc(&a.actor),
            esc(&a.action),
            esc(&a.target),
            esc(&a.details.to_string()),
        );
    }
    out.push_str("</tbody></table>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_covers_markup_and_quotes() {
        assert_eq!(
            esc("<a href=\"x\">'&'</a>"),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
    }

    #[test]
    fn bars_never_overflow_their_track() {
        let svg = bar(&[("used", 7), ("reserved", 9)], 10, "x");
        assert!(svg.contains("x=\"0\" width=\"700\""), "{svg}");
        assert!(svg.contains("x=\"700\" width=\"300\""), "{svg}");
        let empty = bar(&[("used", 3)], 0, "x");
        assert!(empty.contains("width=\"0\""), "{empty}");
    }

    #[test]
    fn every_page_has_a_fragment_address() {
        for p in Page::ALL {
            assert_eq!(Page::from_slug(p.slug()), Some(p));
        }
        assert_eq!(Page::from_slug("secrets"), None);
    }
}
