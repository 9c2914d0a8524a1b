import Foundation
import Yams

/// Reads the `spec` of a `kind: Policy` document.
///
/// Defaults for what may be left out: `interval` 1s or `bake` if shorter, `sampling` 250ms or
/// `interval` if shorter (so the defaults always fit the bake), `failureThreshold` 1
/// (the first failed evaluation counts: the safe side), `pauseAfterErrors` 3, no gates,
/// `rollback.automatic` true without a hard signal, drain with 0 active sessions held for 60s,
/// DNS TTL 0s and a 24h timeout, `decommission.requireApproval` true, `trust.horizon` 30d.
struct PolicyDecoder {
    let reader: DocumentReader
    /// Cluster names a load-balancer gate may judge; nil skips the check (a cluster file could
    /// not be read, so the list would be incomplete).
    let knownClusters: Set<String>?
    /// The drivers a policy may name, in the order messages list them; any other name is an
    /// error listing these, never a silent fallback.
    let drivers: [any DriverDescription]

    func decode(_ spec: Node, name: String, location: SourceLocation) -> Policy? {
        guard let fields = reader.fields(spec, context: "spec", known: [
            "loadBalancer", "steps", "bake", "interval", "sampling", "failureThreshold", "pauseAfterErrors",
            "gates", "rollback", "drain", "decommission", "trust", "waves", "webhooks", "notifications", "traffic",
        ]) else { return nil }
        var ok = true
        func optional<T>(_ key: String, _ read: (Node, String) -> T?, default value: T) -> T {
            guard let node = fields.optional(key) else { return value }
            guard let read = read(node, key) else { ok = false; return value }
            return read
        }

        let loadBalancer = decodeLoadBalancer(fields.required("loadBalancer"))
        let stepNodes = fields.optional("steps").flatMap { node -> [Node]? in
            if case .sequence(let sequence) = node { return Array(sequence) } else { return nil }
        }
        let steps = decodeSteps(fields.required("steps"))
        let bake = fields.required("bake").flatMap { reader.positiveDuration($0, "bake", atMost: ConfigurationLimits.bake) }
        // The defaults fit the bake: a 500ms bake with the old fixed 1s interval was watched for
        // 1.25-1.5s per step (its first evaluation came after the bake) while the journal said
        // "baked 0.5s". An interval written longer than the bake stays an error (below).
        let interval = optional("interval", { reader.positiveDuration($0, $1, atMost: ConfigurationLimits.interval) },
                                default: min(.seconds(1), bake ?? .seconds(1)))
        let sampling = optional("sampling", { reader.positiveDuration($0, $1, atMost: ConfigurationLimits.sampling) },
                                default: min(.milliseconds(250), interval))
        let failureThreshold = optional("failureThreshold", { reader.count($0, $1, minimum: 1) }, default: 1)
        let pauseAfterErrors = optional("pauseAfterErrors", { reader.count($0, $1, minimum: 1) }, default: 3)
        // Unknown (nil) when the load balancer could not be read: its problem is reported, and
        // a gate's or a wave's service is not checked against a list that may be incomplete.
        let services: [String]?? = loadBalancer.map { $0.services }
        let gates = optional("gates", { decodeGates($0, $1, services: services) }, default: [])
        let waves = fields.optional("waves").flatMap { node -> [[String]]? in
            guard let loadBalancer, let waves = decodeWaves(node, services: loadBalancer.services, driver: loadBalancer.driverName) else {
                ok = false
                return nil
            }
            return waves
        }
        let rollback = optional("rollback", { node, _ in decodeRollback(node) },
                                default: RollbackSpec(automatic: true, hardSignal: nil))
        let drain = optional("drain", { node, _ in decodeDrain(node, driver: loadBalancer?.driver) },
                             default: DrainSpec(maxActiveSessions: 0, holdFor: .seconds(60), dnsTTL: .zero,
                                                timeout: .seconds(86_400), forceAfter: nil))
        let decommission = optional("decommission", { node, _ in decodeDecommission(node) },
                                    default: DecommissionSpec(requireApproval: true))
        let horizon = optional("trust", { node, _ in decodeTrust(node) }, default: .seconds(30 * 86_400))
        let webhooks = optional("webhooks", { node, _ in decodeWebhooks(node, gates: gates, interval: interval) }, default: [])
        let notifications = optional("notifications", { node, _ in decodeNotifications(node) }, default: [])
        let traffic: TrafficSpec? = optional("traffic", { node, _ in decodeTraffic(node, loadBalancer: loadBalancer).map(Optional.some) },
                                             default: nil)
        // A router that counts nothing (DNS, a cloud load balancer) leaves the gates, the hard
        // signal and the drain blind unless another source counts: refused here, naming the
        // driver, rather than at the first sample of a run.
        if let loadBalancer, !loadBalancer.driver.countsTraffic, !fields.mentions("traffic"),
           let node = fields.optional("loadBalancer") {
            reader.error(node.mapping?["driver"] ?? node, "driver '\(loadBalancer.driverName)' counts no traffic: add 'traffic.prometheus' "
                         + "(requests and errors per cluster, with $cluster) so that gates, the hard signal and the drain have per-cluster counters")
            ok = false
        }

        // Gates are evaluated every `interval` within a step that lasts `bake`. With an interval
        // longer than the bake a step would end before its first evaluation: either it advances
        // unjudged or the bake silently stretches to the interval. Neither is what the file says,
        // so this is an error, not a warning. An interval equal to the bake (one evaluation per
        // step) is allowed.
        if let bake, fields.has("interval"), interval > bake, let node = fields.optional("interval") {
            reader.error(node, "'interval' (\(formatDuration(interval))) is longer than 'bake' (\(formatDuration(bake))): no gate would be evaluated within a step")
            ok = false
        }
        // The coordinator does everything on its sampling ticks (DESIGN.md: one loop, every
        // `sampling`), gate evaluations and the end of a bake included. Sampling slower than the
        // interval would evaluate gates every `sampling` instead, and stretch a bake to the next
        // tick: the interval written would be silently false. (Default sampling never is.)
        if fields.has("sampling"), sampling > interval, let node = fields.optional("sampling") {
            let what = fields.has("interval") ? "'interval' (\(formatDuration(interval)))"
                : "the default 'interval' (\(formatDuration(interval)), 1s or 'bake' if shorter)"
            reader.error(node, "'sampling' (\(formatDuration(sampling))) is longer than \(what): gates are evaluated on sampling ticks, so they would run every \(formatDuration(sampling)); shorten 'sampling' or set 'interval' to at least \(formatDuration(sampling))")
            ok = false
        }

        guard ok, let loadBalancer, let steps, let bake else { return nil }
        // A `rollout` hook is a gate (Flagger: evaluated every interval like a metric check), and
        // counts as one against the gates' limit.
        let hookGates = webhooks.filter { $0.type == .rollout }.map { Gate(name: $0.name, source: .webhook($0), location: $0.location) }
        if gates.count + hookGates.count > ConfigurationLimits.gates, let first = hookGates.first {
            reader.error(at: first.location, "\(gates.count) gates and \(hookGates.count) rollout hooks are \(gates.count + hookGates.count) gates, "
                         + "more than \(ConfigurationLimits.gates): every gate is evaluated every interval")
            return nil
        }
        var policy = Policy(name: name, loadBalancer: loadBalancer, steps: steps, bake: bake, interval: interval,
                      sampling: sampling, failureThreshold: failureThreshold, pauseAfterErrors: pauseAfterErrors,
                      gates: gates + hookGates, rollback: rollback, drain: drain, decommission: decommission,
                      trustHorizon: horizon, location: location)
        policy.drainDeclared = fields.has("drain")
        policy.stepLocations = stepNodes?.map(reader.location) ?? []
        policy.waves = waves
        policy.webhooks = webhooks
        policy.notifications = notifications
        policy.traffic = traffic
        return policy
    }

    // MARK: Traffic

    /// `traffic: {prometheus: {url, requests, errors, activeSessions}}`. Every query must hold
    /// `$cluster`: without it the same series would be counted for FROM and TO, and a failing TO
    /// could pass as a healthy blend of both.
    private func decodeTraffic(_ node: Node, loadBalancer: LoadBalancerSpec?) -> TrafficSpec? {
        guard let fields = reader.fields(node, context: "spec.traffic", known: ["prometheus"]) else { return nil }
        guard let section = fields.required("prometheus") else { return nil }
        guard let prometheus = reader.fields(section, context: "spec.traffic.prometheus",
                                             known: ["url", "requests", "errors", "activeSessions"]) else { return nil }
        var ok = true
        let url = prometheus.required("url").flatMap { reader.httpURL($0, "url") }
        func query(_ key: String, required: Bool) -> String? {
            guard let node = required ? prometheus.required(key) : prometheus.optional(key) else {
                if required { ok = false }
                return nil
            }
            guard let text = reader.nonEmptyString(node, key) else { ok = false; return nil }
            if !text.contains(PrometheusTraffic.placeholder) {
                reader.error(node, "'\(key)' does not use \(PrometheusTraffic.placeholder): the same series would be counted for both clusters, "
                             + "and TO's errors could not be told from FROM's; select the cluster's series with it, "
                             + #"such as sum(istio_requests_total{cluster="$cluster"})"#)
                ok = false
                return nil
            }
            if let services = loadBalancer?.services, !text.contains(PrometheusTraffic.servicePlaceholder) {
                reader.error(node, "'\(key)' does not use \(PrometheusTraffic.servicePlaceholder), and spec.loadBalancer lists services "
                             + "(\(services.joined(separator: ", "))): every service would be counted the same, and one failing service could not be told "
                             + #"from the others; select the service's series with it too, such as sum(istio_requests_total{cluster="$cluster",destination_service_name="$service"})"#)
                ok = false
                return nil
            }
            return text
        }
        let requests = query("requests", required: true)
        let errors = query("errors", required: true)
        let active = query("activeSessions", required: false)
        guard ok, let url, let requests, let errors else { return nil }
        return TrafficSpec(prometheus: PrometheusTraffic(url: url, requests: requests, errors: errors, activeSessions: active,
                                                         location: reader.location(section)))
    }

    // MARK: Webhooks and notifications

    /// `webhooks: [{name, type, url, timeout, metadata, secretFile}]`. Names are unique among
    /// hooks and gates (a `rollout` hook is a gate, and every evaluation is journaled by name).
    /// A `rollout` hook is evaluated every `interval` like any gate, so its timeout is at most
    /// the interval (default: 10 s or the interval if shorter): longer, evaluations would pile up
    /// on a slow hook. The hooks the engine waits on are asked one call at a time.
    private func decodeWebhooks(_ node: Node, gates: [Gate], interval: Duration) -> [Webhook]? {
        guard let items = reader.sequence(node, "webhooks", atMost: ConfigurationLimits.gates,
                                          because: "hooks are called every interval") else { return nil }
        var hooks: [Webhook] = []
        var ok = true
        var seen: [String: Node] = [:]
        let types = WebhookType.allCases.map(\.rawValue)
        for (index, item) in items.enumerated() {
            guard let fields = reader.fields(item, context: "webhooks[\(index)]",
                                             known: ["name", "type", "url", "timeout", "metadata", "secretFile"]) else {
                ok = false
                continue
            }
            var name: String?
            if let node = fields.required("name"), let text = reader.nonEmptyString(node, "name") {
                if let first = seen[text] {
                    reader.error(node, "duplicate webhook name \(quoted(text)) (first at \(reader.location(first)))")
                } else if let gate = gates.first(where: { $0.name == text }) {
                    reader.error(node, "webhook name \(quoted(text)) is also a gate's (at \(gate.location)); hooks and gates are journaled by name, so give it another")
                } else {
                    seen[text] = node
                    name = text
                }
            }
            var type: WebhookType?
            if let node = fields.required("type"), let text = reader.nonEmptyString(node, "type") {
                type = WebhookType(rawValue: text)
                if type == nil {
                    let suggestion = nearest(text, in: types).map { "; did you mean '\($0)'?" } ?? ""
                    reader.error(node, "unknown webhook type \(quoted(text)); known types: \(types.joined(separator: ", "))\(suggestion)")
                }
            }
            let url = fields.required("url").flatMap { reader.httpURL($0, "url") }
            var timeout: Duration? = type == .rollout ? min(.seconds(10), interval) : .seconds(10)
            if let node = fields.optional("timeout") {
                timeout = reader.positiveDuration(node, "timeout", atMost: ConfigurationLimits.hookTimeout)
                if type == .rollout, let written = timeout, written > interval {
                    reader.error(node, "a rollout hook is evaluated every 'interval' (\(formatDuration(interval))) like any gate: its 'timeout' (\(formatDuration(written))) must not be longer, or calls to a slow hook would pile up")
                    timeout = nil
                }
            }
            var metadata: [String: String]? = [:]
            if let node = fields.optional("metadata") { metadata = decodeStringMap(node, "metadata") }
            var secret: String?? = .some(nil)
            if let node = fields.optional("secretFile") { secret = secretFile(node).map { .some($0) } }
            guard let name, let type, let url, let timeout, let metadata, case .some(let secretFile) = secret else {
                ok = false
                continue
            }
            hooks.append(Webhook(name: name, type: type, url: url, timeout: timeout, metadata: metadata,
                                 secretFile: secretFile, location: reader.location(item)))
        }
        return ok ? hooks : nil
    }

    /// `notifications: [{name, url, format, events, secretFile, timeout}]`.
    private func decodeNotifications(_ node: Node) -> [NotificationTarget]? {
        guard let items = reader.sequence(node, "notifications", atMost: ConfigurationLimits.gates,
                                          because: "each is a queue of its own") else { return nil }
        var targets: [NotificationTarget] = []
        var ok = true
        var seen: [String: Node] = [:]
        let formats = NotificationTarget.Format.allCases.map(\.rawValue)
        let known = NotificationEvents.known
        for (index, item) in items.enumerated() {
            guard let fields = reader.fields(item, context: "notifications[\(index)]",
                                             known: ["name", "url", "format", "events", "secretFile", "timeout"]) else {
                ok = false
                continue
            }
            var name: String?
            if let node = fields.required("name"), let text = reader.nonEmptyString(node, "name") {
                if let first = seen[text] {
                    reader.error(node, "duplicate notification name \(quoted(text)) (first at \(reader.location(first)))")
                } else {
                    seen[text] = node
                    name = text
                }
            }
            let url = fields.required("url").flatMap { reader.httpURL($0, "url") }
            var format: NotificationTarget.Format?
            if let node = fields.required("format"), let text = reader.nonEmptyString(node, "format") {
                format = NotificationTarget.Format(rawValue: text)
                if format == nil {
                    reader.error(node, "unknown notification format \(quoted(text)); known formats: \(formats.joined(separator: ", "))")
                }
            }
            var events: [String]?
            if let node = fields.required("events"),
               let names = reader.sequence(node, "events", atMost: known.count, because: "each event is named once") {
                var chosen: [String] = []
                var good = !names.isEmpty
                if names.isEmpty { reader.error(node, "'events' is empty; name the events to be told of (\(known.joined(separator: ", ")))") }
                for name in names {
                    guard let text = reader.nonEmptyString(name, "events") else { good = false; continue }
                    if !known.contains(text) {
                        let suggestion = nearest(text, in: known).map { "; did you mean '\($0)'?" } ?? ""
                        reader.error(name, "unknown event \(quoted(text))\(suggestion); known events: \(known.joined(separator: ", "))")
                        good = false
                    } else if chosen.contains(text) {
                        reader.error(name, "event \(quoted(text)) is named twice")
                        good = false
                    } else {
                        chosen.append(text)
                    }
                }
                if good { events = chosen }
            }
            var timeout: Duration? = .seconds(5)
            if let node = fields.optional("timeout") {
                timeout = reader.positiveDuration(node, "timeout", atMost: ConfigurationLimits.hookTimeout)
            }
            var secret: String?? = .some(nil)
            if let node = fields.optional("secretFile") { secret = secretFile(node).map { .some($0) } }
            guard let name, let url, let format, let events, let timeout, case .some(let secretFile) = secret else {
                ok = false
                continue
            }
            targets.append(NotificationTarget(name: name, url: url, format: format, events: events, secretFile: secretFile,
                                              timeout: timeout, location: reader.location(item)))
        }
        return ok ? targets : nil
    }

    /// A key file that exists, is not empty, and that other users cannot read: a signing key
    /// readable by everyone on the machine signs nothing.
    private func secretFile(_ node: Node) -> String? {
        guard let path = reader.existingFile(node, "secretFile") else { return nil }
        // The file a link leads to (a Kubernetes Secret volume's `key -> ..data/key`): its mode is
        // what protects the key, a link's is always 777.
        let target = URL(fileURLWithPath: path).resolvingSymlinksInPath().path
        guard let attributes = try? FileManager.default.attributesOfItem(atPath: target),
              let mode = (attributes[.posixPermissions] as? NSNumber)?.intValue else {
            reader.error(node, "'secretFile': cannot read the permissions of \(quoted(path, limit: 200))")
            return nil
        }
        if mode & 0o004 != 0 {
            reader.error(node, "'secretFile' \(quoted(path, limit: 200)) is readable by every user (mode \(String(mode & 0o777, radix: 8))); a signing key must not be: chmod o-r (600 is usual)")
            return nil
        }
        // Read to check there is a key (never shown): line breaks at the end are not part of it.
        guard var key = FileManager.default.contents(atPath: target) else {
            reader.error(node, "'secretFile': cannot read \(quoted(path, limit: 200))")
            return nil
        }
        while let last = key.last, last == UInt8(ascii: "\n") || last == UInt8(ascii: "\r") { key.removeLast() }
        if key.isEmpty {
            reader.error(node, "'secretFile' \(quoted(path, limit: 200)) is empty; it holds the signing key")
            return nil
        }
        return path
    }

    /// A mapping of names to single values (`metadata: {team: payments}`).
    private func decodeStringMap(_ node: Node, _ key: String) -> [String: String]? {
        guard case .mapping(let mapping) = node else {
            reader.error(node, "'\(key)' must be a mapping of names to values")
            return nil
        }
        var result: [String: String] = [:]
        var ok = true
        for (name, value) in mapping {
            guard let k = reader.nonEmptyString(name, key), let v = reader.string(value, k) else { ok = false; continue }
            result[k] = v
        }
        return ok ? result : nil
    }

    // MARK: Load balancer

    private func decodeLoadBalancer(_ node: Node?) -> LoadBalancerSpec? {
        let names = drivers.map(\.name)
        // The section of a driver no one knows (`driver: nginx` beside `nginx: {...}`) is not a
        // second problem: the unknown driver is the one, and it is reported below.
        var keys = ["driver"] + names
        if let written = node?.mapping?["driver"]?.scalar?.string, !names.contains(written) {
            keys.append(written)
        }
        guard let fields = reader.fields(node, context: "spec.loadBalancer", known: keys) else {
            return nil
        }
        let known = names.isEmpty ? "none" : names.joined(separator: ", ")
        var driver: (any DriverDescription)?
        if let node = fields.required("driver"), let text = reader.nonEmptyString(node, "driver") {
            if let found = drivers.first(where: { $0.name == text }) {
                driver = found
            } else {
                let suggestion = nearest(text, in: names).map { "; did you mean '\($0)'?" } ?? ""
                reader.error(node, "unknown driver \(quoted(text)); known drivers: \(known)\(suggestion)")
            }
        }
        // A section for a driver that is not selected is a leftover from an edit: which one
        // was meant? Say so rather than guess.
        for other in names where other != driver?.name && fields.has(other) {
            if let driver, let key = fields.keyNode(other) {
                reader.error(key, "section '\(other)' is for a driver that is not selected (driver is '\(driver.name)'); remove it or change 'driver'")
            }
        }
        guard let driver else { return nil }
        guard let section = fields.optional(driver.name) else {
            if fields.mentions(driver.name) { return nil }
            reader.error(fields.keyNode("driver") ?? fields.node, "driver '\(driver.name)' needs its section 'spec.loadBalancer.\(driver.name)'")
            return nil
        }
        // The section is the driver's own business: its keys, its checks, its messages.
        guard let settings = driver.decodeSection(ConfigValue(reader: reader, node: section, key: driver.name)) else {
            return nil
        }
        var spec = LoadBalancerSpec(driver: driver, settings: settings)
        spec.settingsLocation = reader.location(section)
        // Where each service is written (the contract's `services` key of every driver), for
        // problems found across files.
        if case .mapping(let services)? = section.mapping?["services"] {
            for (key, _) in services {
                if let name = key.scalar?.string { spec.serviceLocations[name] = reader.location(key) }
            }
        }
        return spec
    }

    // MARK: Steps

    private func decodeSteps(_ node: Node?) -> [Double]? {
        guard let node, let items = reader.sequence(node, "steps", atMost: ConfigurationLimits.steps,
                                                      because: "each step is watched for a whole bake") else { return nil }
        guard !items.isEmpty else {
            reader.error(node, "'steps' is empty; list the percentages of traffic to TO, ending at 100")
            return nil
        }
        var steps: [Double] = []
        var ok = true
        var previous: Double?
        for item in items {
            guard let value = reader.number(item, "steps") else { ok = false; continue }
            if !(0...100).contains(value) {
                reader.error(item, "step \(formatNumber(value)) is outside 0–100 (a percentage of traffic to TO)")
                ok = false
                steps.append(value)
                continue  // not the order's fault: compare the next step with the last good one
            } else if let previous, value <= previous {
                reader.error(item, "steps must increase strictly: \(formatNumber(value)) follows \(formatNumber(previous))")
                ok = false
            }
            previous = value
            steps.append(value)
        }
        if ok, let last = steps.last, last != 100, let lastNode = items.last {
            reader.error(lastNode, "the last step must be 100 (all traffic on TO), got \(formatNumber(last))")
            ok = false
        }
        return ok ? steps : nil
    }

    // MARK: Waves

    /// `waves: [[cart], [checkout, search]]`: every service of the load balancer's `services`
    /// exactly once.
    private func decodeWaves(_ node: Node, services: [String]?, driver: String) -> [[String]]? {
        guard let items = reader.sequence(node, "waves", atMost: ConfigurationLimits.services,
                                          because: "each wave walks every step") else { return nil }
        guard let services else {
            reader.error(node, "'waves' orders services, and spec.loadBalancer.\(driver) lists none; add its 'services' or remove 'waves'")
            return nil
        }
        if items.isEmpty {
            reader.error(node, "'waves' is empty; leave it out to move every service in one wave")
            return nil
        }
        var waves: [[String]] = []
        var seen: [String: Node] = [:]
        var ok = true
        for (index, item) in items.enumerated() {
            guard let names = reader.sequence(item, "waves[\(index)]", atMost: ConfigurationLimits.services,
                                              because: "a wave lists services") else { ok = false; continue }
            if names.isEmpty {
                reader.error(item, "waves[\(index)] is empty; a wave moves at least one service")
                ok = false
            }
            var wave: [String] = []
            for name in names {
                guard let text = reader.nonEmptyString(name, "waves[\(index)]") else { ok = false; continue }
                if !services.contains(text) {
                    let suggestion = nearest(text, in: services).map { "; did you mean '\($0)'?" } ?? ""
                    reader.error(name, "waves[\(index)] names unknown service \(quoted(text)); the load balancer's services: \(services.joined(separator: ", "))\(suggestion)")
                    ok = false
                } else if let first = seen[text] {
                    reader.error(name, "service \(quoted(text)) is named twice in 'waves' (first at \(reader.location(first))); each service moves in exactly one wave")
                    ok = false
                } else {
                    seen[text] = name
                    wave.append(text)
                }
            }
            waves.append(wave)
        }
        let missing = services.filter { seen[$0] == nil }
        if ok, !missing.isEmpty {
            reader.error(node, "'waves' leaves out \(missing.count == 1 ? "service" : "services") \(missing.map { quoted($0) }.joined(separator: ", ")); every service moves in exactly one wave")
            ok = false
        }
        return ok ? waves : nil
    }

    // MARK: Gates

    private func decodeGates(_ node: Node, _ key: String, services: [String]??) -> [Gate]? {
        guard let items = reader.sequence(node, key, atMost: ConfigurationLimits.gates,
                                          because: "every gate is evaluated every interval") else { return nil }
        var gates: [Gate] = []
        var ok = true
        var seen: [String: Node] = [:]
        for (index, item) in items.enumerated() {
            guard let fields = reader.fields(item, context: "gates[\(index)]", known: ["name", "loadBalancer", "prometheus"]) else {
                ok = false
                continue
            }
            var name: String?
            if let node = fields.required("name"), let text = reader.nonEmptyString(node, "name") {
                if let first = seen[text] {
                    reader.error(node, "duplicate gate name \(quoted(text)) (first at \(reader.location(first)))")
                    ok = false
                } else {
                    seen[text] = node
                    name = text
                }
            }
            let label = name.map { "gate \(quoted($0))" } ?? "gates[\(index)]"
            let hasLB = fields.mentions("loadBalancer"), hasProm = fields.mentions("prometheus")
            var source: GateSource?
            if hasLB && hasProm {
                reader.error(fields.keyNode("prometheus") ?? item,
                             "\(label) has both 'loadBalancer' and 'prometheus'; one gate judges one source, so make two gates")
            } else if !hasLB && !hasProm {
                reader.error(item, "\(label) has no source; give it 'loadBalancer' or 'prometheus'")
            } else if let node = fields.optional("loadBalancer") {
                source = decodeLoadBalancerGate(node, label: label, services: services).map(GateSource.loadBalancer)
            } else if let node = fields.optional("prometheus") {
                source = decodePrometheusGate(node, label: label).map(GateSource.prometheus)
            }
            guard let name, let source else { ok = false; continue }
            gates.append(Gate(name: name, source: source, location: reader.location(item)))
        }
        return ok ? gates : nil
    }

    private func decodeLoadBalancerGate(_ node: Node, label: String, services known: [String]??) -> LoadBalancerGate? {
        guard let fields = reader.fields(node, context: "gate loadBalancer",
                                         known: ["cluster", "service", "max5xxRatio", "minRequests", "maxMeanResponseTime"]) else { return nil }
        var ok = true
        var service: String?
        if let node = fields.optional("service") {
            if let text = reader.nonEmptyString(node, "service") {
                if case .some(let services) = known, let services, !services.contains(text) {
                    let suggestion = nearest(text, in: services).map { "; did you mean '\($0)'?" } ?? ""
                    reader.error(node, "\(label) judges unknown service \(quoted(text)); the load balancer's services: \(services.joined(separator: ", "))\(suggestion)")
                    ok = false
                } else if case .some(.none) = known {
                    reader.error(node, "\(label) names service \(quoted(text)), and the load balancer lists no 'services'; remove 'service'")
                    ok = false
                } else {
                    service = text
                }
            } else {
                ok = false
            }
        }
        var cluster: String?
        if let node = fields.required("cluster"), let text = reader.nonEmptyString(node, "cluster") {
            if let knownClusters, !knownClusters.contains(text) {
                let known = knownClusters.sorted()
                let list = known.isEmpty ? "no clusters are defined" : "known clusters: \(known.joined(separator: ", "))"
                reader.error(node, "\(label) judges unknown cluster \(quoted(text)); \(list)")
            } else {
                cluster = text
            }
        }
        var max5xxRatio: Double?
        if let node = fields.optional("max5xxRatio") {
            max5xxRatio = reader.ratio(node, "max5xxRatio")
            if max5xxRatio == nil { ok = false }
        }
        var minRequests = 1
        if let node = fields.optional("minRequests") {
            if let value = reader.count(node, "minRequests", minimum: 0) { minRequests = value } else { ok = false }
        }
        var maxMean: Duration?
        if let node = fields.optional("maxMeanResponseTime") {
            maxMean = reader.positiveDuration(node, "maxMeanResponseTime", atMost: ConfigurationLimits.maxMeanResponseTime)
            if maxMean == nil { ok = false }
        }
        if !fields.mentions("max5xxRatio") && !fields.mentions("maxMeanResponseTime") {
            reader.error(node, "\(label) checks nothing; set 'max5xxRatio' or 'maxMeanResponseTime'")
            ok = false
        }
        guard ok, let cluster else { return nil }
        return LoadBalancerGate(cluster: cluster, service: service, max5xxRatio: max5xxRatio, minRequests: minRequests,
                                maxMeanResponseTime: maxMean)
    }

    private func decodePrometheusGate(_ node: Node, label: String) -> PrometheusGate? {
        guard let fields = reader.fields(node, context: "gate prometheus", known: ["url", "query", "min", "max"]) else {
            return nil
        }
        var ok = true
        let url = fields.required("url").flatMap { reader.httpURL($0, "url") }
        let query = fields.required("query").flatMap { reader.nonEmptyString($0, "query") }
        var minimum: Double?, maximum: Double?
        if let node = fields.optional("min") {
            minimum = reader.number(node, "min")
            if minimum == nil { ok = false }
        }
        if let node = fields.optional("max") {
            maximum = reader.number(node, "max")
            if maximum == nil { ok = false }
        }
        if !fields.mentions("min") && !fields.mentions("max") {
            reader.error(node, "\(label) checks nothing; set 'min' or 'max'")
            ok = false
        }
        if let minimum, let maximum, minimum > maximum, let node = fields.optional("max") {
            reader.error(node, "'max' (\(formatNumber(maximum))) is below 'min' (\(formatNumber(minimum))): the gate could never pass")
            ok = false
        }
        guard ok, let url, let query else { return nil }
        return PrometheusGate(url: url, query: query, min: minimum, max: maximum)
    }

    // MARK: Rollback, drain, decommission, trust

    private func decodeRollback(_ node: Node) -> RollbackSpec? {
        guard let fields = reader.fields(node, context: "spec.rollback", known: ["automatic", "hardSignal"]) else { return nil }
        var ok = true
        var automatic = true
        if let node = fields.optional("automatic") {
            if let value = reader.bool(node, "automatic") { automatic = value } else { ok = false }
        }
        var hardSignal: HardSignal?
        if let node = fields.optional("hardSignal") {
            if let hard = reader.fields(node, context: "spec.rollback.hardSignal", known: ["max5xxRatio", "minRequests"]) {
                let ratio = hard.required("max5xxRatio").flatMap { reader.ratio($0, "max5xxRatio") }
                var minRequests: Int? = 1
                if let node = hard.optional("minRequests") { minRequests = reader.count(node, "minRequests", minimum: 0) }
                if let ratio, let minRequests {
                    hardSignal = HardSignal(max5xxRatio: ratio, minRequests: minRequests)
                } else {
                    ok = false
                }
            } else {
                ok = false
            }
        }
        return ok ? RollbackSpec(automatic: automatic, hardSignal: hardSignal) : nil
    }

    /// `driver`: the policy's load-balancer driver, when it could be read (nil otherwise).
    private func decodeDrain(_ node: Node, driver: (any DriverDescription)?) -> DrainSpec? {
        guard let fields = reader.fields(node, context: "spec.drain",
                                         known: ["maxActiveSessions", "holdFor", "dnsTTL", "timeout", "forceAfter"]) else { return nil }
        var ok = true
        func read<T>(_ key: String, _ get: (Node, String) -> T?, default value: T) -> T {
            guard let node = fields.optional(key) else { return value }
            guard let got = get(node, key) else { ok = false; return value }
            return got
        }
        let maxActive = read("maxActiveSessions", { reader.count($0, $1, minimum: 0) }, default: 0)
        let holdFor = read("holdFor", { reader.positiveDuration($0, $1, atMost: ConfigurationLimits.holdFor) }, default: .seconds(60))
        let dnsTTL = read("dnsTTL", { reader.nonNegativeDuration($0, $1, atMost: ConfigurationLimits.dnsTTL) }, default: .zero)
        let timeout = read("timeout", { reader.positiveDuration($0, $1, atMost: ConfigurationLimits.drainTimeout) },
                           default: .seconds(86_400))
        var forceAfter: Duration?
        if let node = fields.optional("forceAfter") {
            forceAfter = reader.positiveDuration(node, "forceAfter", atMost: ConfigurationLimits.drainTimeout)
            if forceAfter == nil { ok = false }
        }
        // A driver that cannot close the sessions open to one cluster (Envoy's admin API has
        // nothing like HAProxy's `shutdown sessions`) would do nothing with the key, so it must
        // not parse.
        if forceAfter != nil, let driver, !driver.capabilities.contains(.shutdownSessions),
           let key = fields.keyNode("forceAfter") {
            reader.error(key, "'forceAfter' cannot be carried out with driver '\(driver.name)': \(driver.limitation(.shutdownSessions)); remove it: the drain waits for them, and 'timeout' says when to stop waiting")
            ok = false
        }
        // Forcing sessions closed after the drain has already timed out can never happen.
        if let forceAfter, forceAfter >= timeout, let node = fields.optional("forceAfter") {
            reader.error(node, "'forceAfter' (\(formatDuration(forceAfter))) is not before 'timeout' (\(formatDuration(timeout))): the drain would time out first")
            ok = false
        }
        // Waiting out the DNS TTL is part of the drain, so a timeout shorter than it always fails.
        if dnsTTL >= timeout, fields.has("dnsTTL"), let node = fields.optional("dnsTTL") {
            reader.error(node, "'dnsTTL' (\(formatDuration(dnsTTL))) is not shorter than 'timeout' (\(formatDuration(timeout))): the drain could never finish")
            ok = false
        } else if dnsTTL > .zero, holdFor < timeout, dnsTTL + holdFor >= timeout, let node = fields.optional("dnsTTL") {
            // The hold begins only once the TTL has passed, so the shortest drain is both: a
            // policy whose TTL and hold each fit in the timeout, but not one after the other.
            // (A hold alone longer than the timeout is allowed, as before: a drain that is meant
            // to time out, tracked on by `switchover drain`.)
            reader.error(node, "'dnsTTL' (\(formatDuration(dnsTTL))) and then 'holdFor' (\(formatDuration(holdFor))) are not shorter than "
                         + "'timeout' (\(formatDuration(timeout))): the hold begins only after the DNS TTL, so the drain could never finish")
            ok = false
        }
        return ok ? DrainSpec(maxActiveSessions: maxActive, holdFor: holdFor, dnsTTL: dnsTTL, timeout: timeout,
                              forceAfter: forceAfter) : nil
    }

    private func decodeDecommission(_ node: Node) -> DecommissionSpec? {
        guard let fields = reader.fields(node, context: "spec.decommission", known: ["requireApproval"]) else { return nil }
        guard let node = fields.optional("requireApproval") else { return DecommissionSpec(requireApproval: true) }
        return reader.bool(node, "requireApproval").map(DecommissionSpec.init(requireApproval:))
    }

    private func decodeTrust(_ node: Node) -> Duration? {
        guard let fields = reader.fields(node, context: "spec.trust", known: ["horizon"]) else { return nil }
        guard let node = fields.optional("horizon") else { return .seconds(30 * 86_400) }
        // 0 is allowed: it turns early expiry warnings off.
        return reader.nonNegativeDuration(node, "horizon", atMost: ConfigurationLimits.trustHorizon)
    }
}
