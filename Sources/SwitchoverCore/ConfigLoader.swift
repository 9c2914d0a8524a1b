import Foundation
import Yams

/// Loads `clusters/*.yaml` and `policies/*.yaml` (DESIGN.md section 3) and validates them.
///
/// Every file is read, every problem of every file is reported in one run, sorted by file and
/// line, each at the node it is about. This is the only I/O SwitchoverCore does.
public enum ConfigLoader {
    /// What a Cluster or Policy file may be called: `*.yaml` or `*.yml`. Other files in the
    /// folders (a README, a backup) are not read.
    public static let extensions: Set<String> = ["yaml", "yml"]

    /// - Parameter drivers: the load-balancer drivers a policy may name (SwitchoverDrivers'
    ///   registry gives them): each reads its own `spec.loadBalancer.<name>` section, and any
    ///   other name is an error listing these.
    public static func load(clustersDirectory: String, policiesDirectory: String,
                            drivers: [any DriverDescription]) -> (Configuration, [Diagnostic]) {
        var diagnostics: [Diagnostic] = []
        var clusters: [Cluster] = []
        var policies: [Policy] = []
        // When a cluster file could not be read at all, references to its (unknown) name would
        // only add noise; the file's own diagnostic says what is wrong.
        var everyClusterRead = true

        for file in files(in: clustersDirectory, kind: "clusters", diagnostics: &diagnostics) {
            let (cluster, problems) = loadDocument(file: file, expected: .cluster, drivers: drivers)
            diagnostics += problems
            if case .cluster(let cluster)? = cluster { clusters.append(cluster) } else { everyClusterRead = false }
        }
        let knownClusters = everyClusterRead ? Set(clusters.map(\.name)) : nil
        for file in files(in: policiesDirectory, kind: "policies", diagnostics: &diagnostics) {
            let (policy, problems) = loadDocument(file: file, expected: .policy, drivers: drivers, knownClusters: knownClusters)
            diagnostics += problems
            if case .policy(let policy)? = policy { policies.append(policy) }
        }

        diagnostics += crossCheck(clusters: &clusters, policies: &policies)
        let configuration = Configuration(clusters: clusters, policies: policies)
        // Only over a complete set of clusters: "no pair can express it" needs every pair.
        if everyClusterRead {
            for policy in policies { diagnostics += configuration.stepsNoPairCanExpress(policy) }
        }
        return (configuration, diagnostics.sorted())
    }

    /// Loads one file on its own: a Cluster or a Policy, whichever its `kind` says. Used by
    /// tests and tools that look at a single document; cross-file checks do not apply.
    public static func loadFile(_ file: String, drivers: [any DriverDescription]) -> (cluster: Cluster?, policy: Policy?, diagnostics: [Diagnostic]) {
        let (document, problems) = loadDocument(file: file, expected: nil, drivers: drivers)
        switch document {
        case .cluster(let cluster)?: return (cluster, nil, problems.sorted())
        case .policy(let policy)?: return (nil, policy, problems.sorted())
        case nil: return (nil, nil, problems.sorted())
        }
    }

    // MARK: Files

    private static func files(in directory: String, kind: String, diagnostics: inout [Diagnostic]) -> [String] {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory) else {
            diagnostics.append(Diagnostic(file: directory, line: 0, column: 0, message: "the \(kind) folder does not exist"))
            return []
        }
        guard isDirectory.boolValue else {
            diagnostics.append(Diagnostic(file: directory, line: 0, column: 0, message: "the \(kind) folder is not a folder"))
            return []
        }
        let names: [String]
        do {
            names = try FileManager.default.contentsOfDirectory(atPath: directory)
        } catch {
            diagnostics.append(Diagnostic(file: directory, line: 0, column: 0, message: "cannot read the \(kind) folder: \(error.localizedDescription)"))
            return []
        }
        let yamlNames = names.filter { extensions.contains(($0 as NSString).pathExtension.lowercased()) && !$0.hasPrefix(".") }.sorted()
        if yamlNames.isEmpty {
            diagnostics.append(Diagnostic(file: directory, line: 0, column: 0, message: "no *.yaml or *.yml files in the \(kind) folder"))
        }
        return yamlNames.map { directory.hasSuffix("/") ? directory + $0 : directory + "/" + $0 }
    }

    private enum Kind: String {
        case cluster = "Cluster"
        case policy = "Policy"
    }

    private enum Document {
        case cluster(Cluster)
        case policy(Policy)
    }

    /// `knownClusters`: the names a policy's gates may judge; nil skips that check.
    private static func loadDocument(file: String, expected: Kind?, drivers: [any DriverDescription],
                                     knownClusters: Set<String>? = nil) -> (Document?, [Diagnostic]) {
        let absolute = file.hasPrefix("/") ? file : FileManager.default.currentDirectoryPath + "/" + file
        let reader = DocumentReader(file: file, directory: URL(fileURLWithPath: absolute).deletingLastPathComponent().standardized)
        let top = SourceLocation(file: file, line: 1, column: 1)
        let data: Data
        switch read(file) {
        case .contents(let contents):
            data = contents
        case .unreadable:
            reader.error(at: SourceLocation(file: file, line: 0, column: 0), "cannot read the file")
            return (nil, reader.diagnostics)
        case .tooLarge(let size):
            let limit = ConfigurationLimits.fileBytes
            reader.error(at: SourceLocation(file: file, line: 0, column: 0),
                         "the file is \(size.map { "\($0) bytes" } ?? "larger than \(limit) bytes"); a Switchover file is at most \(limit / 1024 / 1024) MiB (\(limit) bytes), so it is not read")
            return (nil, reader.diagnostics)
        }
        guard let text = String(data: data, encoding: .utf8), !text.contains("\u{0}") else {
            reader.error(at: top, "not YAML: the file is not UTF-8 text")
            return (nil, reader.diagnostics)
        }
        if let problem = YAMLAliasGuard.check(text) {
            reader.error(at: SourceLocation(file: file, line: problem.line, column: problem.column), problem.message)
            return (nil, reader.diagnostics)
        }
        var roots: [Node] = []
        do {
            // No resolver rules: `PlainScalarTags` types the scalars without loading ICU.
            var documents = try Yams.compose_all(yaml: text, .basic)
            while let node = documents.next() { roots.append(PlainScalarTags.typed(node)) }
            if let error = documents.error { throw error }
        } catch {
            reader.error(at: yamlErrorLocation(error, file: file), "not YAML: \(yamlErrorMessage(error))")
            return (nil, reader.diagnostics)
        }
        guard let root = roots.first else {
            reader.error(at: top, "empty file: expected a \(expected?.rawValue ?? "Cluster or Policy") document")
            return (nil, reader.diagnostics)
        }
        if roots.count > 1 {
            reader.error(roots[1], "\(roots.count) YAML documents in one file; Switchover reads exactly one document per file")
            return (nil, reader.diagnostics)
        }
        guard case .mapping = root else {
            reader.error(root, "not a Switchover document: expected a mapping with apiVersion, kind, metadata and spec, got \(describe(root))")
            return (nil, reader.diagnostics)
        }
        guard let fields = reader.fields(root, context: "the document", known: ["apiVersion", "kind", "metadata", "spec"]) else {
            return (nil, reader.diagnostics)
        }
        if let node = fields.required("apiVersion"), let version = reader.string(node, "apiVersion"), version != switchoverAPIVersion {
            reader.error(node, "unsupported apiVersion \(quoted(version)); expected \(switchoverAPIVersion)")
        }
        var kind: Kind?
        if let node = fields.required("kind"), let text = reader.string(node, "kind") {
            if let found = Kind(rawValue: text) {
                if let expected, found != expected {
                    let folder = expected == .cluster ? "clusters" : "policies"
                    reader.error(node, "kind \(quoted(text)) in the \(folder) folder; expected \(expected.rawValue)")
                } else {
                    kind = found
                }
            } else {
                let allowed = expected.map { [$0.rawValue] } ?? ["Cluster", "Policy"]
                let suggestion = nearest(text, in: allowed).map { "; did you mean '\($0)'?" } ?? ""
                reader.error(node, "unknown kind \(quoted(text)); expected \(allowed.joined(separator: " or "))\(suggestion)")
            }
        }
        let name = readName(fields, reader: reader)
        let spec = fields.required("spec")
        guard let kind, let name, let spec else { return (nil, reader.diagnostics) }
        let location = reader.location(root)
        switch kind {
        case .cluster:
            let cluster = ClusterDecoder(reader: reader, drivers: drivers).decode(spec, name: name, location: location)
            return (cluster.map(Document.cluster), reader.diagnostics)
        case .policy:
            let policy = PolicyDecoder(reader: reader, knownClusters: knownClusters, drivers: drivers)
                .decode(spec, name: name, location: location)
            return (policy.map(Document.policy), reader.diagnostics)
        }
    }

    private enum ReadResult {
        case contents(Data)
        case unreadable
        /// Larger than `ConfigurationLimits.fileBytes`; the size when the file system said it.
        case tooLarge(Int?)
    }

    /// The file's bytes, up to `ConfigurationLimits.fileBytes`. The size is checked before
    /// reading, and the read stops one byte past the limit anyway (a file that grows meanwhile,
    /// a FIFO), so a huge file costs neither the time nor the memory of reading it.
    private static func read(_ file: String) -> ReadResult {
        let limit = ConfigurationLimits.fileBytes
        if let size = (try? FileManager.default.attributesOfItem(atPath: file))?[.size] as? Int, size > limit {
            return .tooLarge(size)
        }
        guard let handle = FileHandle(forReadingAtPath: file) else { return .unreadable }
        defer { try? handle.close() }
        do {
            // nil at the end of the file: an empty file.
            let data = try handle.read(upToCount: limit + 1) ?? Data()
            return data.count > limit ? .tooLarge(nil) : .contents(data)
        } catch {
            return .unreadable
        }
    }

    /// `metadata.name`: a DNS label, because names are typed on the command line and become
    /// parts of file names and journal keys.
    private static func readName(_ fields: DocumentReader.Fields, reader: DocumentReader) -> String? {
        guard let metadata = reader.fields(fields.required("metadata"), context: "metadata", known: ["name"]),
              let node = metadata.required("name"), let name = reader.nonEmptyString(node, "name") else { return nil }
        let allowed = name.allSatisfy { ($0.isASCII && ($0.isLowercase || $0.isNumber)) || $0 == "-" }
        if !allowed || name.hasPrefix("-") || name.hasSuffix("-") || name.count > 63 {
            reader.error(node, "name \(quoted(name)) must be a DNS label: lowercase letters, digits and '-', at most 63 characters")
            return nil
        }
        return name
    }

    private static func yamlErrorLocation(_ error: any Error, file: String) -> SourceLocation {
        let mark: Mark?
        switch error as? YamlError {
        case .scanner(_, _, let m, _)?, .parser(_, _, let m, _)?, .composer(_, _, let m, _)?: mark = m
        case .duplicatedKeysInMapping(_, let context)?: mark = context.mark
        case .reader(_, let offset?, _, let yaml)?:
            let prefix = yaml.prefix(offset)
            let line = prefix.filter { $0 == "\n" }.count + 1
            let column = prefix.count - (prefix.lastIndex(of: "\n").map { prefix.distance(from: prefix.startIndex, to: $0) + 1 } ?? 0) + 1
            mark = nil
            return SourceLocation(file: file, line: line, column: column)
        default: mark = nil
        }
        return SourceLocation(file: file, line: max(mark?.line ?? 1, 1), column: max(mark?.column ?? 1, 1))
    }

    private static func yamlErrorMessage(_ error: any Error) -> String {
        switch error as? YamlError {
        case .scanner(let context, let problem, _, _)?, .parser(let context, let problem, _, _)?,
             .composer(let context, let problem, _, _)?:
            if let context { return "\(problem) (\(context.text) at \(context.mark.line):\(context.mark.column))" }
            return problem
        case .duplicatedKeysInMapping(let duplicates, _)?:
            return "duplicate key \(duplicates.map { quoted($0) }.joined(separator: ", ")) in one mapping"
        case .reader(let problem, _, _, _)?:
            return problem
        default:
            return String(describing: error)
        }
    }

    // MARK: Across files

    private static func crossCheck(clusters: inout [Cluster], policies: inout [Policy]) -> [Diagnostic] {
        var diagnostics: [Diagnostic] = []

        var firstCluster: [String: Cluster] = [:]
        var uniqueClusters: [Cluster] = []
        for cluster in clusters {
            if let first = firstCluster[cluster.name] {
                diagnostics.append(Diagnostic(location: cluster.location,
                    message: "duplicate cluster name '\(cluster.name)'; also defined at \(first.location)"))
                diagnostics.append(Diagnostic(location: first.location,
                    message: "duplicate cluster name '\(cluster.name)'; also defined at \(cluster.location)"))
            } else {
                firstCluster[cluster.name] = cluster
                uniqueClusters.append(cluster)
            }
        }
        clusters = uniqueClusters

        var owner: [String: Cluster] = [:]
        for cluster in clusters {
            for server in cluster.loadBalancer.servers {
                if let other = owner[server] {
                    diagnostics.append(Diagnostic(location: cluster.location,
                        message: "server \(quoted(server)) of cluster '\(cluster.name)' is also a server of cluster '\(other.name)' (\(other.location)); each load-balancer server belongs to one cluster"))
                } else {
                    owner[server] = cluster
                }
            }
        }

        var firstPolicy: [String: Policy] = [:]
        var uniquePolicies: [Policy] = []
        for policy in policies {
            if let first = firstPolicy[policy.name] {
                diagnostics.append(Diagnostic(location: policy.location,
                    message: "duplicate policy name '\(policy.name)'; also defined at \(first.location)"))
                diagnostics.append(Diagnostic(location: first.location,
                    message: "duplicate policy name '\(policy.name)'; also defined at \(policy.location)"))
            } else {
                firstPolicy[policy.name] = policy
                uniquePolicies.append(policy)
            }
        }
        policies = uniquePolicies

        // Services: a cluster that lists its servers service by service and a policy that maps
        // services to backends must name the same services (the single forms pair with
        // anything: `validatePair` refuses a mix when a run names them).
        for policy in policies {
            guard let services = policy.loadBalancer.services else { continue }
            for cluster in clusters {
                guard let listed = cluster.loadBalancer.services else { continue }
                diagnostics += serviceMismatch(policy: policy, services: services, cluster: cluster, listed: listed)
            }
        }
        return diagnostics
    }

    /// A service the policy maps that the cluster does not list (at the policy), and one the
    /// cluster lists that the policy does not map (at the cluster's service).
    static func serviceMismatch(policy: Policy, services: [String], cluster: Cluster,
                                listed: [ServiceServers]) -> [Diagnostic] {
        var diagnostics: [Diagnostic] = []
        let names = listed.map(\.service)
        for service in services where !names.contains(service) {
            diagnostics.append(Diagnostic(location: policy.loadBalancer.serviceLocations[service] ?? policy.loadBalancer.settingsLocation ?? policy.location,
                message: "policy '\(policy.name)' maps service \(quoted(service)), which cluster '\(cluster.name)' does not list (\(cluster.location)); list its servers under spec.loadBalancer.services.\(service)"))
        }
        for entry in listed where !services.contains(entry.service) {
            diagnostics.append(Diagnostic(location: entry.location ?? cluster.location,
                message: "cluster '\(cluster.name)' lists service \(quoted(entry.service)), which policy '\(policy.name)' does not map to a backend (\(policy.location)); add it to the policy's services or remove it here"))
        }
        return diagnostics
    }
}
