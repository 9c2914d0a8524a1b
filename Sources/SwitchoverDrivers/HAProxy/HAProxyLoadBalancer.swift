import Foundation
import Logging
import SwitchoverCore
import SwitchoverNet

/// HAProxy through its runtime API (the `stats socket ... level admin`), over a UNIX socket or
/// `tcp://host:port`.
///
/// One write is one round trip per chunk of `set server B/S weight N` commands joined by `;`
/// (HAProxy 2.6.12 accepted a single 344 KB line of 10,000 commands in testing; chunks are
/// bounded at `maxLineBytes` anyway so that one line never depends on that), framed by a read
/// of `show info;show servers state B` before (every server must exist: nothing is written
/// otherwise) and after (the read-back).
///
/// Weights come from `show servers state`: `srv_uweight` is the live weight, `srv_iweight` the
/// configured one (what a restarted HAProxy goes back to). A restart is seen in `show info`:
/// a new `Pid`, or an `Uptime_sec` that went backwards.
///
/// Stats (`show stat B 4 -1`, CSV read by header name), summed over a cluster's servers:
/// - `activeSessions`: `scur`; `totalSessions`: `stot`;
/// - `totalRequests`: the sum of `hrsp_1xx`…`hrsp_5xx` and `hrsp_other` (responses received);
/// - `responses2xx`/`responses5xx`: `hrsp_2xx`/`hrsp_5xx`; `responsesOther`: the rest;
/// - `meanResponseTime`: each server's `rtime` (mean over its last 1024 requests, in ms),
///   weighted by min(responses, 1024);
/// - servers: `status` (`UP`, `DOWN`, `DRAIN`, `MAINT`, `no check`); serving unless down,
///   draining or in maintenance.
///
/// FROM's traffic, for the drain, is what FROM's server rows of this one backend count,
/// whatever routed it there: the weights, a `use-server` rule, cookie persistence (all of them
/// reach a server in `drain` state, which is what keeps pinned clients working while FROM
/// drains). Traffic to FROM's servers through another backend, or straight to them, is not
/// seen: point such routes at this backend, or they will be cut off by the teardown unseen.
/// `scur` counts streams (requests in flight, tunnels), not idle client connections: in HTTP
/// mode an idle keep-alive connection holds nothing on a server, and its next request is
/// balanced again (to TO once FROM drains).
public final class HAProxyLoadBalancer: WeightRouter, TrafficObserver {
    public let driver = HAProxyDriver().name
    public let address: String
    public let backend: String
    public let translation = HAProxyDriver().translation
    public let capabilities = HAProxyDriver().capabilities
    public let fromCluster: ClusterServers
    public let toCluster: ClusterServers
    /// Largest command line sent in one round trip.
    public let maxLineBytes: Int
    private let client: LineClient
    private let logger: Logger
    private let memory = Locked(Memory())
    /// Set for a member of a fleet: the read of its whole instance, which the fleet makes once
    /// for all the instance's members (`HAProxySharedReads`). Writes and their
    /// read-backs never go through it.
    let shared: HAProxySharedReads?

    /// What the driver saw last: to tell a restart and drift from a value it set itself.
    private struct Memory {
        var readBack = ReadBackMemory()
    }

    public init(spec: HAProxySpec, from: ClusterServers, to: ClusterServers, logger: Logger,
                connectTimeout: Duration = .seconds(2), readTimeout: Duration = .seconds(5),
                maxLineBytes: Int = 64 * 1024, shared: HAProxySharedReads? = nil) throws {
        self.shared = shared
        self.address = spec.socket
        self.backend = spec.backend
        self.fromCluster = from
        self.toCluster = to
        self.logger = logger
        self.maxLineBytes = maxLineBytes
        self.client = LineClient(address: spec.socket, connectTimeout: connectTimeout, readTimeout: readTimeout)
        // The loader refuses such names already; this guards every other way in (a Cluster built
        // in code), since the names go into runtime-API lines unescaped.
        for name in from.servers + to.servers + [spec.backend] where !LoadBalancerName.isValid(name) {
            throw LoadBalancerError(.invalidConfiguration, driver: "haproxy", address: spec.socket, server: name,
                                    message: "'\(name)' cannot be a HAProxy backend or server name (\(LoadBalancerName.rule))")
        }
    }

    // MARK: - WeightRouter

    public func currentWeights() async throws -> LiveWeights {
        guard let shared else { return try observe(try await readState()) }
        // A member of a fleet (which reads once per instance for all its members): alone, it
        // reads the instance for itself.
        return try currentWeights(from: try await shared.read())
    }

    /// This backend's live weights in a read of the whole instance (`HAProxySharedReads`).
    func currentWeights(from all: HAProxySharedReads.Answer) throws -> LiveWeights {
        guard let servers = all.backends[backend] else {
            throw LoadBalancerError(.unknownServer, driver: driver, address: address, message: "HAProxy has no backend '\(backend)'")
        }
        return try observe(State(identity: all.identity, servers: servers))
    }

    @discardableResult
    public func apply(_ assignment: WeightAssignment) async throws -> LiveWeights {
        try checkAssignment(assignment)
        let before = try await readState()
        for server in assignment.all where before.servers[server.server] == nil {
            throw LoadBalancerError(.unknownServer, driver: driver, address: address, server: server.server,
                                    message: "backend '\(backend)' has no server '\(server.server)'; nothing was written")
        }
        // Only what differs is written: HAProxy 2.6 recounts the whole backend on every weight
        // change (quadratic at 10,000 servers), and the read-back checks every server anyway.
        let commands = Self.writes(assignment, before: before.servers.mapValues(\.weight))
            .map { (server: $0.server, command: "set server \(backend)/\($0.server) weight \($0.weight)") }
        try await run(commands)
        let after = try await readState()
        for server in assignment.all {
            let live = after.servers[server.server]?.weight
            if live != server.weight {
                throw LoadBalancerError(.readBackMismatch, driver: driver, address: address, server: server.server,
                                        intended: server.weight, live: live,
                                        message: "server \(backend)/\(server.server): wrote weight \(server.weight), read back \(live.map(String.init) ?? "nothing")")
            }
        }
        memory.withLock { memory in
            memory.readBack.remember(applied: assignment)
        }
        logger.debug("haproxy weights applied", metadata: [
            "address": "\(address)", "backend": "\(backend)",
            "percentToTarget": "\(assignment.effectivePercentToTarget)", "servers": "\(assignment.all.count)",
        ])
        return try observe(after)
    }

    /// The weights to write, in order: only those that differ from `before` (HAProxy 2.6
    /// recounts the whole backend on every weight change), raised ones before lowered ones.
    /// HAProxy's threads balance requests between two commands of one line, so lowering FROM
    /// first while TO was at 0 (a restarted HAProxy's weights written back to 100% to TO) left
    /// every server at 0 for a moment, answered with 503 (seen under fault injection). In this
    /// order the total never drops to 0 on the way to a total above 0.
    static func writes(_ assignment: WeightAssignment, before: [String: Int]) -> [ServerWeight] {
        let changed = assignment.all.filter { before[$0.server] != $0.weight }
        return changed.filter { $0.weight > before[$0.server] ?? 0 } + changed.filter { $0.weight < before[$0.server] ?? 0 }
    }

    // MARK: - TrafficObserver

    public func stats() async throws -> LoadBalancerStats {
        if let shared {
            // A member of a fleet, asked alone (see `currentWeights`).
            return try stats(from: try await shared.read())
        }
        let answer = try await send("show info;show stat \(backend) 4 -1")
        return try stats(identity: try Self.parseIdentity(answer, driver: driver, address: address),
                         table: try CSVTable(showStat: answer, driver: driver, address: address))
    }

    /// This backend's counters in a read of the whole instance (`HAProxySharedReads`).
    func stats(from all: HAProxySharedReads.Answer) throws -> LoadBalancerStats {
        try stats(identity: all.identity, table: all.table)
    }

    private func stats(identity: LoadBalancerIdentity, table: CSVTable) throws -> LoadBalancerStats {
        var clusters: [String: ClusterStats] = [:]
        for cluster in [fromCluster, toCluster] {
            var stats = ClusterStats(cluster: cluster.cluster, activeSessions: 0, totalSessions: 0, totalRequests: 0,
                                     responses2xx: 0, responses5xx: 0, responsesOther: 0, meanResponseTime: nil,
                                     servers: [])
            var timeWeighted = 0.0
            var timeWeight = 0
            for server in cluster.servers {
                guard let row = table.row(proxy: backend, server: server) else {
                    throw LoadBalancerError(.unknownServer, driver: driver, address: address, server: server,
                                            message: "show stat lists no server \(backend)/\(server)")
                }
                stats.activeSessions += row.int("scur")
                stats.totalSessions += row.int("stot")
                let xx2 = row.int("hrsp_2xx"), xx5 = row.int("hrsp_5xx")
                let other = row.int("hrsp_1xx") + row.int("hrsp_3xx") + row.int("hrsp_4xx") + row.int("hrsp_other")
                stats.responses2xx += xx2
                stats.responses5xx += xx5
                stats.responsesOther += other
                stats.totalRequests += xx2 + xx5 + other
                let answered = min(xx2 + xx5 + other, 1024)
                if answered > 0 {
                    timeWeighted += Double(row.int("rtime")) * Double(answered)
                    timeWeight += answered
                }
                let status = row.string("status")
                let serving = !(status.hasPrefix("DOWN") || status.hasPrefix("DRAIN") || status.hasPrefix("MAINT")
                    || status.hasPrefix("NOLB"))
                stats.servers.append(ServerHealth(server: server, status: status, serving: serving))
            }
            if timeWeight > 0 {
                stats.meanResponseTime = .microseconds(Int64((timeWeighted / Double(timeWeight) * 1000).rounded()))
            }
            clusters[cluster.cluster] = stats
        }
        return LoadBalancerStats(clusters: clusters, identity: identity, takenAt: Date())
    }

    // MARK: - Drain state and sessions

    public func setDrain(cluster: String) async throws {
        try await setState("drain", cluster: cluster)
    }

    public func setReady(cluster: String) async throws {
        try await setState("ready", cluster: cluster)
    }

    /// `shutdown sessions server B/S` for each of `cluster`'s servers: HAProxy closes every
    /// stream open to them at once (their clients see the connection end). Nothing is read back:
    /// the next `show stat` shows `scur` falling.
    public func shutdownSessions(cluster name: String) async throws {
        let cluster = try servers(ofCluster: name)
        let before = try await readState()
        for server in cluster.servers where before.servers[server] == nil {
            throw LoadBalancerError(.unknownServer, driver: driver, address: address, server: server,
                                    message: "backend '\(backend)' has no server '\(server)'; nothing was written")
        }
        try await run(cluster.servers.map { (server: $0, command: "shutdown sessions server \(backend)/\($0)") })
    }

    private func setState(_ state: String, cluster name: String) async throws {
        let cluster = try servers(ofCluster: name)
        let before = try await readState()
        for server in cluster.servers where before.servers[server] == nil {
            throw LoadBalancerError(.unknownServer, driver: driver, address: address, server: server,
                                    message: "backend '\(backend)' has no server '\(server)'; nothing was written")
        }
        try await run(cluster.servers.map { (server: $0, command: "set server \(backend)/\($0) state \(state)") })
        // Read back srv_admin_state: 0x08 is a forced drain (SRV_ADMF_FDRAIN), 0x01 forced
        // maintenance (SRV_ADMF_FMAINT); `ready` clears both.
        let after = try await readState()
        for server in cluster.servers {
            let admin = after.servers[server]?.adminState ?? -1
            let ok = state == "drain" ? admin >= 0 && admin & 0x08 != 0 : admin >= 0 && admin & 0x09 == 0
            if !ok {
                throw LoadBalancerError(.readBackMismatch, driver: driver, address: address, server: server,
                                        message: "server \(backend)/\(server): set state \(state), read back admin state \(after.servers[server]?.adminState ?? -1)")
            }
        }
    }

    // MARK: - Runtime API

    struct ServerState {
        var weight: Int
        var configured: Int
        var adminState: Int
    }

    struct State {
        var identity: LoadBalancerIdentity
        var servers: [String: ServerState]
    }

    private func checkAssignment(_ assignment: WeightAssignment) throws {
        let fromSet = Set(fromCluster.servers), toSet = Set(toCluster.servers)
        for (side, entries, allowed) in [("FROM", assignment.from, fromSet), ("TO", assignment.to, toSet)] {
            for entry in entries {
                guard allowed.contains(entry.server) else {
                    throw LoadBalancerError(.invalidWeight, driver: driver, address: address, server: entry.server,
                                            message: "server '\(entry.server)' is not one of \(side)'s servers")
                }
                guard (0...translation.maxWeight).contains(entry.weight) else {
                    throw LoadBalancerError(.invalidWeight, driver: driver, address: address, server: entry.server,
                                            intended: entry.weight,
                                            message: "weight \(entry.weight) for '\(entry.server)' is outside 0...\(translation.maxWeight)")
                }
            }
        }
    }

    /// Identity and every server of the backend, in one round trip.
    private func readState() async throws -> State {
        let answer = try await send("show info;show servers state \(backend)")
        return try Self.parseState(answer, backend: backend, driver: driver, address: address)
    }

    /// Reads `show info;show servers state B` in one pass over the UTF-8 bytes: at 1,000
    /// servers, splitting into `Substring`s cost ten times the round trip itself.
    static func parseState(_ answer: String, backend: String, driver: String, address: String) throws -> State {
        let all = try parseStates(answer, backend: backend, driver: driver, address: address)
        return State(identity: all.identity, servers: all.backends[backend] ?? [:])
    }

    /// Every backend's servers (or only `backend`'s), by backend and server name.
    static func parseStates(_ answer: String, backend: String?, driver: String, address: String) throws
        -> (identity: LoadBalancerIdentity, backends: [String: [String: ServerState]]) {
        let bytes = Array(answer.utf8)
        let backendBytes = backend.map { Array($0.utf8) }
        let pidPrefix = Array("Pid: ".utf8), uptimePrefix = Array("Uptime_sec: ".utf8)
        let headerPrefix = Array("# be_id".utf8)
        var pid: String?
        var uptime: Int64?
        var columnCount = 0
        var be = -1, name = -1, uweight = -1, iweight = -1, admin = -1
        var backends: [String: [String: ServerState]] = [:]
        var fields: [Range<Int>] = []
        fields.reserveCapacity(32)

        func hasPrefix(_ prefix: [UInt8], _ line: Range<Int>) -> Bool {
            line.count >= prefix.count && bytes[line.lowerBound..<line.lowerBound + prefix.count].elementsEqual(prefix)
        }
        func int(_ range: Range<Int>) -> Int? {
            guard !range.isEmpty, range.count < 19 else { return nil }
            var value = 0
            for byte in bytes[range] {
                guard byte >= 48 && byte <= 57 else { return nil }
                value = value * 10 + Int(byte - 48)
            }
            return value
        }

        var lineStart = 0
        for index in 0...bytes.count where index == bytes.count || bytes[index] == 10 {
            let line = lineStart..<index
            lineStart = index + 1
            if line.isEmpty { continue }
            if columnCount == 0 {
                if pid == nil, hasPrefix(pidPrefix, line) {
                    pid = String(decoding: bytes[(line.lowerBound + pidPrefix.count)..<line.upperBound], as: UTF8.self)
                } else if uptime == nil, hasPrefix(uptimePrefix, line) {
                    uptime = int((line.lowerBound + uptimePrefix.count)..<line.upperBound).map(Int64.init)
                } else if hasPrefix(headerPrefix, line) {
                    let names = String(decoding: bytes[(line.lowerBound + 2)..<line.upperBound], as: UTF8.self)
                        .split(separator: " ").map(String.init)
                    columnCount = names.count
                    be = names.firstIndex(of: "be_name") ?? -1
                    name = names.firstIndex(of: "srv_name") ?? -1
                    uweight = names.firstIndex(of: "srv_uweight") ?? -1
                    iweight = names.firstIndex(of: "srv_iweight") ?? -1
                    admin = names.firstIndex(of: "srv_admin_state") ?? -1
                    guard be >= 0, name >= 0, uweight >= 0, iweight >= 0, admin >= 0 else {
                        throw LoadBalancerError(.badResponse, driver: driver, address: address, answer: String(names.joined(separator: " ")),
                                                message: "show servers state lacks be_name, srv_name, srv_uweight, srv_iweight or srv_admin_state")
                    }
                }
                continue
            }
            fields.removeAll(keepingCapacity: true)
            var fieldStart = line.lowerBound
            for at in line.lowerBound...line.upperBound where at == line.upperBound || bytes[at] == 32 {
                fields.append(fieldStart..<at)
                fieldStart = at + 1
            }
            guard fields.count == columnCount, backendBytes.map({ bytes[fields[be]].elementsEqual($0) }) ?? true else { continue }
            guard let u = int(fields[uweight]), let i = int(fields[iweight]), let a = int(fields[admin]) else {
                throw LoadBalancerError(.badResponse, driver: driver, address: address,
                                        answer: String(decoding: bytes[line], as: UTF8.self),
                                        message: "unreadable line in show servers state")
            }
            backends[backend ?? String(decoding: bytes[fields[be]], as: UTF8.self), default: [:]][String(decoding: bytes[fields[name]], as: UTF8.self)]
                = ServerState(weight: u, configured: i, adminState: a)
        }
        guard let pid, let uptime else {
            throw LoadBalancerError(.badResponse, driver: driver, address: address, answer: String(answer.prefix(500)),
                                    message: "show info gave no Pid and Uptime_sec (is the socket at level admin?)")
        }
        guard columnCount > 0 else {
            if let line = answer.split(separator: "\n").first(where: { $0.contains("Can't find backend") }) {
                // Only HAProxy's own words about the backend: the `show info` before them says nothing.
                throw LoadBalancerError(.unknownServer, driver: driver, address: address, answer: String(line),
                                        message: "HAProxy has no backend '\(backend ?? "")'")
            }
            throw LoadBalancerError(.badResponse, driver: driver, address: address, answer: String(answer.prefix(500)),
                                    message: "show servers state \(backend ?? "") gave no '# be_id ...' header")
        }
        return (LoadBalancerIdentity(instance: "pid \(pid)", uptime: .seconds(uptime), generation: nil), backends)
    }

    /// Turns a read into `LiveWeights`, comparing with what the driver saw and applied before.
    private func observe(_ state: State) throws -> LiveWeights {
        func weights(_ cluster: ClusterServers) throws -> [ServerWeight] {
            try cluster.servers.map { server in
                guard let found = state.servers[server] else {
                    throw LoadBalancerError(.unknownServer, driver: driver, address: address, server: server,
                                            message: "backend '\(backend)' has no server '\(server)' (cluster '\(cluster.cluster)')")
                }
                return ServerWeight(server: server, weight: found.weight)
            }
        }
        let assignment = WeightAssignment(from: try weights(fromCluster), to: try weights(toCluster))
        let configured = assignment.all.map { ServerWeight(server: $0.server, weight: state.servers[$0.server]!.configured) }
        // Drift is reported by whoever acts on it (the coordinator, once per episode), not
        // logged here on every read while it lasts.
        let drift = memory.withLock { $0.readBack.drift(assignment) }
        // srv_admin_state 0x08: forced drain (`set server ... state drain`).
        let inDrain = Set(assignment.all.map(\.server).filter { (state.servers[$0]?.adminState ?? 0) & 0x08 != 0 })
        return LiveWeights(assignment: assignment, configured: configured,
                           shares: shares(of: assignment, from: fromCluster.cluster, to: toCluster.cluster),
                           identity: state.identity, drift: drift, readAt: Date(), inDrain: inDrain)
    }

    static func parseIdentity(_ answer: String, driver: String, address: String) throws -> LoadBalancerIdentity {
        // `show info` comes first: read its lines only, not the (large) answers after it.
        var pid: String?
        var uptime: Int64?
        var rest = answer[...]
        while !rest.isEmpty, pid == nil || uptime == nil {
            let end = rest.firstIndex(of: "\n") ?? rest.endIndex
            let line = rest[..<end]
            if line.hasPrefix("Pid: ") { pid = String(line.dropFirst(5)) }
            if line.hasPrefix("Uptime_sec: ") { uptime = Int64(line.dropFirst(12)) }
            if line.isEmpty { break }   // the end of `show info`'s block
            rest = end == rest.endIndex ? rest[end...] : rest[rest.index(after: end)...]
        }
        guard let pid, let uptime else {
            throw LoadBalancerError(.badResponse, driver: driver, address: address, answer: String(answer.prefix(500)),
                                    message: "show info gave no Pid and Uptime_sec (is the socket at level admin?)")
        }
        return LoadBalancerIdentity(instance: "pid \(pid)", uptime: .seconds(uptime), generation: nil)
    }

    /// Sends commands joined by `;`, at most `maxLineBytes` a line. Each command answers one
    /// block ended by an empty line; a successful `set server` answers an empty block, so any
    /// text names the command (and server) HAProxy refused.
    private func run(_ commands: [(server: String, command: String)]) async throws {
        for range in Self.chunks(commands.map(\.command), maxLineBytes: maxLineBytes) {
            let chunk = commands[range]
            let answer = try await send(chunk.map(\.command).joined(separator: ";"))
            let blocks = Self.blocks(answer)
            if blocks.count == chunk.count {
                for (entry, block) in zip(chunk, blocks) where !block.isEmpty {
                    throw LoadBalancerError(.commandFailed, driver: driver, address: address, server: entry.server,
                                            answer: block, message: "HAProxy refused '\(entry.command)'")
                }
            } else if !answer.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty {
                throw LoadBalancerError(.commandFailed, driver: driver, address: address, answer: answer,
                                        message: "HAProxy refused some of \(chunk.count) commands")
            }
        }
    }

    /// Consecutive ranges of `commands` whose `;`-joined line stays within `maxLineBytes`
    /// (a single longer command gets a line of its own).
    static func chunks(_ commands: [String], maxLineBytes: Int) -> [Range<Int>] {
        var ranges: [Range<Int>] = []
        var start = 0
        while start < commands.count {
            var end = start
            var bytes = 0
            while end < commands.count && (end == start || bytes + commands[end].utf8.count + 1 <= maxLineBytes) {
                bytes += commands[end].utf8.count + 1
                end += 1
            }
            ranges.append(start..<end)
            start = end
        }
        return ranges
    }

    /// The runtime-API lines one `apply` of `assignment` sends, in order: the state read, the
    /// weight writes, the read-back. For benchmarks that replay them with another client.
    public func commandLines(for assignment: WeightAssignment) -> [String] {
        let read = "show info;show servers state \(backend)"
        let sets = assignment.all.map { "set server \(backend)/\($0.server) weight \($0.weight)" }
        let writes = Self.chunks(sets, maxLineBytes: maxLineBytes).map { sets[$0].joined(separator: ";") }
        return [read] + writes + [read]
    }

    /// Splits a runtime-API answer into one text per command (each ends with an empty line).
    static func blocks(_ answer: String) -> [String] {
        var blocks: [String] = []
        var current: [Substring] = []
        for line in answer.split(separator: "\n", omittingEmptySubsequences: false).dropLast() {
            if line.isEmpty {
                blocks.append(current.joined(separator: "\n"))
                current = []
            } else {
                current.append(line)
            }
        }
        return blocks
    }

    private func send(_ command: String) async throws -> String {
        try await Self.send(command, with: client, driver: driver, address: address)
    }

    /// One runtime-API round trip; a socket's failure as the driver's error (`.timeout` or
    /// `.unreachable`, naming the address).
    static func send(_ command: String, with client: LineClient, driver: String, address: String) async throws -> String {
        do {
            return try await client.send(command)
        } catch let error as LineClientError {
            let code: LoadBalancerError.Code = (error.code == .readTimeout || error.code == .connectTimeout) ? .timeout : .unreachable
            throw LoadBalancerError(code, driver: driver, address: address,
                                    message: "runtime API: \(error.description)")
        }
    }
}

/// `show stat` CSV, read by the header's column names (the column order differs between
/// HAProxy versions), in one pass over the UTF-8 bytes keeping only the columns asked for:
/// at 1,000 servers the answer is about 400 KB, and splitting it into `Substring`s took 90 ms.
struct CSVTable {
    static let required = ["pxname", "svname", "scur", "stot", "hrsp_2xx", "hrsp_5xx", "rtime", "status"]
    static let wanted = required + ["hrsp_1xx", "hrsp_3xx", "hrsp_4xx", "hrsp_other"]
    /// A wanted column's place in a row's values.
    private static let slot = Dictionary(uniqueKeysWithValues: wanted.enumerated().map { ($0.element, $0.offset) })

    /// Where the wanted columns are in one header line: per column, the wanted slot or -1.
    private struct Header {
        var slots: [Int]
        var pxAt: Int
        var svAt: Int
    }

    /// Headers already read, by their bytes: every sample reads the same header again (it
    /// changes only with the HAProxy version), and naming its hundred-odd columns cost more than
    /// the rows of a small table. A few versions at most in one fleet; cleared if ever full.
    private static let headers = Locked<[[UInt8]: Header]>([:])

    private struct Key: Hashable {
        var proxy: String
        var server: String
    }

    /// Wanted column values of each row (in `wanted` order), by proxy and server.
    private let rows: [Key: [String]]

    init(showStat answer: String, driver: String, address: String) throws {
        let bytes = Array(answer.utf8)
        var header: Header?
        var rows: [Key: [String]] = [:]
        var lineStart = 0
        for index in 0...bytes.count where index == bytes.count || bytes[index] == 10 {
            let line = lineStart..<index
            lineStart = index + 1
            guard line.count > 2 else { continue }
            if bytes[line.lowerBound] == UInt8(ascii: "#") && bytes[line.lowerBound + 1] == 32 {
                header = try Self.header(Array(bytes[(line.lowerBound + 2)..<line.upperBound]), driver: driver, address: address)
                continue
            }
            guard let header else { continue }
            var values = [String](repeating: "", count: Self.wanted.count)
            var column = 0
            var fieldStart = line.lowerBound
            for at in line.lowerBound...line.upperBound where at == line.upperBound || bytes[at] == 44 {
                if column < header.slots.count, header.slots[column] >= 0 {
                    values[header.slots[column]] = String(decoding: bytes[fieldStart..<at], as: UTF8.self)
                }
                column += 1
                fieldStart = at + 1
            }
            if column > max(header.pxAt, header.svAt) {
                rows[Key(proxy: values[0], server: values[1])] = values
            }
        }
        guard header != nil else {
            throw LoadBalancerError(.badResponse, driver: driver, address: address, answer: String(answer.prefix(500)),
                                    message: "show stat gave no '# pxname,...' header")
        }
        self.rows = rows
    }

    /// The wanted columns' places in a header line (the bytes after `# `).
    private static func header(_ line: [UInt8], driver: String, address: String) throws -> Header {
        if let known = headers.withLock({ $0[line] }) { return known }
        let names = String(decoding: line, as: UTF8.self).split(separator: ",", omittingEmptySubsequences: false).map(String.init)
        var slots = [Int](repeating: -1, count: names.count)
        var found = Set<String>()
        for (at, name) in names.enumerated() {
            guard let wanted = slot[name], found.insert(name).inserted else { continue }
            slots[at] = wanted
        }
        for needed in required where !found.contains(needed) {
            throw LoadBalancerError(.badResponse, driver: driver, address: address,
                                    message: "show stat has no column '\(needed)'")
        }
        let header = Header(slots: slots, pxAt: slots.firstIndex(of: 0)!, svAt: slots.firstIndex(of: 1)!)
        headers.withLock { known in
            if known.count >= 16 { known.removeAll() }
            known[line] = header
        }
        return header
    }

    struct Row {
        let values: [String]
        func string(_ name: String) -> String { CSVTable.slot[name].map { values[$0] } ?? "" }
        func int(_ name: String) -> Int { CSVTable.slot[name].flatMap { Int(values[$0]) } ?? 0 }
    }

    /// The row of server `server` in proxy `proxy`.
    func row(proxy: String, server: String) -> Row? {
        rows[Key(proxy: proxy, server: server)].map(Row.init)
    }
}

/// The reads of one HAProxy instance carrying a fleet's members (several services, or one
/// service of several instances): one round trip, `show info;show servers state;show stat -1 4
/// -1`, answers every member's weights and counters at once, parsed once:
/// `FleetRouter.readEachInstance` reads each instance once for all its members. Only reads go
/// through here: a write's read before and read-back after are the driver's own, so a
/// read-back is never older than its write.
public final class HAProxySharedReads: Sendable {
    let address: String
    private let client: LineClient
    static let command = "show info;show servers state;show stat -1 4 -1"

    struct Answer: Sendable {
        var identity: LoadBalancerIdentity
        var backends: [String: [String: HAProxyLoadBalancer.ServerState]]
        var table: CSVTable
    }

    public init(address: String) {
        self.address = address
        client = LineClient(address: address, connectTimeout: .seconds(2), readTimeout: .seconds(5))
    }

    /// One read of the instance, parsed.
    func read() async throws -> Answer {
        let driver = HAProxyDriver().name
        let answer = try await HAProxyLoadBalancer.send(Self.command, with: client, driver: driver, address: address)
        // One block per command, each ended by an empty line: cut at the first two, without
        // splitting the (large) answer into lines.
        let utf8 = answer.utf8
        var cuts: [String.Index] = []
        var index = utf8.startIndex
        var afterNewline = false
        while index != utf8.endIndex && cuts.count < 2 {
            let isNewline = utf8[index] == 10
            if isNewline && afterNewline { cuts.append(index) }
            afterNewline = isNewline && !(afterNewline && isNewline)
            index = utf8.index(after: index)
        }
        guard cuts.count == 2 else {
            throw LoadBalancerError(.badResponse, driver: driver, address: address, answer: String(answer.prefix(500)),
                                    message: "'\(Self.command)' did not answer three blocks")
        }
        let states = try HAProxyLoadBalancer.parseStates(String(answer[..<cuts[1]]), backend: nil, driver: driver, address: address)
        return Answer(identity: states.identity, backends: states.backends,
                      table: try CSVTable(showStat: String(answer[utf8.index(after: cuts[1])...]), driver: driver, address: address))
    }
}
