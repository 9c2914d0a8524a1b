import Foundation
import SwitchoverNet

/// One resource record set as Route53 holds it. A weighted record set carries a
/// `setIdentifier` (one per cluster: `blue`, `green`) and a `weight` (0–255); plain ones carry
/// neither. Either `values` (with a `ttl`) or an `aliasTarget` (an ALB, say) says what it points at.
///
/// An UPSERT replaces the whole record set, so anything it had that the change does not
/// repeat is gone: a router must write back what it read (`healthCheckId` included) and change
/// only the weight.
public struct Route53RecordSet: Sendable, Hashable {
    /// As Route53 returns it: fully qualified with a trailing dot, special characters escaped
    /// as `\DDD` octal (`\052` for `*`).
    public var name: String
    /// `A`, `AAAA`, `CNAME`, `TXT`, ...
    public var type: String
    public var setIdentifier: String?
    public var weight: Int?
    public var ttl: Int?
    /// The records' values (for `TXT`, with their quotes: `"heritage=external-dns,..."`).
    public var values: [String]
    public var aliasTarget: Route53AliasTarget?
    public var healthCheckId: String?

    public init(name: String, type: String, setIdentifier: String? = nil, weight: Int? = nil, ttl: Int? = nil,
                values: [String] = [], aliasTarget: Route53AliasTarget? = nil, healthCheckId: String? = nil) {
        self.name = name
        self.type = type
        self.setIdentifier = setIdentifier
        self.weight = weight
        self.ttl = ttl
        self.values = values
        self.aliasTarget = aliasTarget
        self.healthCheckId = healthCheckId
    }
}

/// What an alias record points at (a load balancer, a CloudFront distribution, another record).
public struct Route53AliasTarget: Sendable, Hashable {
    public var hostedZoneId: String
    public var dnsName: String
    public var evaluateTargetHealth: Bool

    public init(hostedZoneId: String, dnsName: String, evaluateTargetHealth: Bool) {
        self.hostedZoneId = hostedZoneId
        self.dnsName = dnsName
        self.evaluateTargetHealth = evaluateTargetHealth
    }
}

/// One change of a change batch.
public struct Route53Change: Sendable, Hashable {
    public enum Action: String, Sendable, Hashable {
        case create = "CREATE"
        case upsert = "UPSERT"
        case delete = "DELETE"
    }

    public var action: Action
    public var recordSet: Route53RecordSet

    public init(_ action: Action, _ recordSet: Route53RecordSet) {
        self.action = action
        self.recordSet = recordSet
    }
}

/// A change batch's progress: `PENDING` until every Route53 name server has it, then `INSYNC`.
public struct Route53ChangeInfo: Sendable, Hashable {
    public enum Status: Sendable, Hashable, CustomStringConvertible {
        case pending
        case insync
        /// A status this client does not know (kept, so that a new one is reported, not guessed).
        case other(String)

        init(_ text: String) {
            switch text {
            case "PENDING": self = .pending
            case "INSYNC": self = .insync
            default: self = .other(text)
            }
        }

        public var description: String {
            switch self {
            case .pending: "PENDING"
            case .insync: "INSYNC"
            case .other(let text): text
            }
        }
    }

    /// The change id without Route53's `/change/` prefix: `C2682N5HXP0BZ4`.
    public var id: String
    public var status: Status
    /// ISO 8601, as Route53 wrote it.
    public var submittedAt: String?
    public var comment: String?

    public init(id: String, status: Status, submittedAt: String? = nil, comment: String? = nil) {
        self.id = id
        self.status = status
        self.submittedAt = submittedAt
        self.comment = comment
    }
}

/// One page of `ListResourceRecordSets`. When `isTruncated`, the next page starts at
/// `nextRecordName`/`nextRecordType`/`nextRecordIdentifier`.
public struct Route53RecordSetPage: Sendable, Hashable {
    public var recordSets: [Route53RecordSet]
    public var isTruncated: Bool
    public var nextRecordName: String?
    public var nextRecordType: String?
    public var nextRecordIdentifier: String?

    public init(recordSets: [Route53RecordSet], isTruncated: Bool = false, nextRecordName: String? = nil,
                nextRecordType: String? = nil, nextRecordIdentifier: String? = nil) {
        self.recordSets = recordSets
        self.isTruncated = isTruncated
        self.nextRecordName = nextRecordName
        self.nextRecordType = nextRecordType
        self.nextRecordIdentifier = nextRecordIdentifier
    }
}

/// A hosted zone, as `GetHostedZone` describes it.
public struct Route53HostedZone: Sendable, Hashable {
    /// Without Route53's `/hostedzone/` prefix: `Z0123456789`.
    public var id: String
    /// With its trailing dot: `example.com.`.
    public var name: String
    public var callerReference: String?
    public var comment: String?
    public var privateZone: Bool
    public var recordSetCount: Int?

    public init(id: String, name: String, callerReference: String? = nil, comment: String? = nil, privateZone: Bool = false,
                recordSetCount: Int? = nil) {
        self.id = id
        self.name = name
        self.callerReference = callerReference
        self.comment = comment
        self.privateZone = privateZone
        self.recordSetCount = recordSetCount
    }
}

/// The Route53 calls a weighted-DNS switchover needs, over the REST-XML API (version
/// 2013-04-01), signed for the service `route53`.
///
/// Route53 is a global service: its endpoint is `https://route53.amazonaws.com` and requests are
/// signed for `us-east-1` (another partition has its own endpoint and region: pass both).
///
/// Weighted records: weights are 0–255, checked here before anything is sent (moto accepts any
/// number; AWS would refuse with `InvalidInput`). A weight goes with a `setIdentifier`.
public struct Route53Client: Sendable {
    public static let defaultEndpoint = "https://route53.amazonaws.com"
    public static let weightRange = 0...255

    public let client: AWSClient
    public let endpoint: String
    public let signer: SigV4Signer

    public init(client: AWSClient, endpoint: String? = nil, region: String = "us-east-1") {
        self.client = client
        self.endpoint = Self.trimmingSlash(endpoint ?? Self.defaultEndpoint)
        self.signer = SigV4Signer(service: "route53", region: region)
    }

    /// Applies `changes` as one change batch (Route53 applies a batch all or nothing) and
    /// returns its change id and status.
    public func changeResourceRecordSets(hostedZoneId: String, changes: [Route53Change],
                                         comment: String? = nil) async throws -> Route53ChangeInfo {
        let zone = Self.bareId(hostedZoneId, prefix: "/hostedzone/")
        let operation = "ChangeResourceRecordSets"
        let resource = "hosted zone \(zone)"
        do {
            try Self.validate(changes)
        } catch {
            throw error.with(service: signer.service, operation: operation, resource: resource)
        }
        var xml = #"<?xml version="1.0" encoding="UTF-8"?>"#
        xml += #"<ChangeResourceRecordSetsRequest xmlns="https://route53.amazonaws.com/doc/2013-04-01/"><ChangeBatch>"#
        if let comment { xml += "<Comment>\(Self.escape(comment))</Comment>" }
        xml += "<Changes>"
        for change in changes {
            xml += "<Change><Action>\(change.action.rawValue)</Action>\(Self.xml(change.recordSet))</Change>"
        }
        xml += "</Changes></ChangeBatch></ChangeResourceRecordSetsRequest>"
        let request = AWSRequest(method: "POST", endpoint: endpoint,
                                 path: "/2013-04-01/hostedzone/\(AWSRequest.encode(segment: zone))/rrset/",
                                 headers: [HTTPHeader("Content-Type", "text/xml")], body: Data(xml.utf8))
        let root = try await call(request, operation: operation, resource: resource, expecting: "ChangeResourceRecordSetsResponse")
        return try changeInfo(root, operation: operation, resource: resource)
    }

    /// The status of a change batch (`PENDING` or `INSYNC`). `id` with or without `/change/`.
    public func getChange(id: String) async throws -> Route53ChangeInfo {
        let change = Self.bareId(id, prefix: "/change/")
        let operation = "GetChange"
        let resource = "change \(change)"
        let request = AWSRequest(method: "GET", endpoint: endpoint, path: "/2013-04-01/change/\(AWSRequest.encode(segment: change))")
        let root = try await call(request, operation: operation, resource: resource, expecting: "GetChangeResponse")
        return try changeInfo(root, operation: operation, resource: resource)
    }

    /// One page of the zone's record sets in Route53's order (by name, labels read right to
    /// left, then type, then set identifier), starting at `startName`/`startType`/
    /// `startIdentifier` when given (a type needs a name, an identifier needs both).
    public func listResourceRecordSets(hostedZoneId: String, startName: String? = nil, startType: String? = nil,
                                       startIdentifier: String? = nil, maxItems: Int? = nil) async throws -> Route53RecordSetPage {
        let zone = Self.bareId(hostedZoneId, prefix: "/hostedzone/")
        let operation = "ListResourceRecordSets"
        let resource = "hosted zone \(zone)"
        if (startType != nil && startName == nil) || (startIdentifier != nil && startType == nil) {
            throw AWSError(.invalidRequest, "a start type needs a start name, and a start identifier needs both",
                           service: signer.service, operation: operation, resource: resource)
        }
        var query: [(name: String, value: String)] = []
        if let startName { query.append(("name", startName)) }
        if let startType { query.append(("type", startType)) }
        if let startIdentifier { query.append(("identifier", startIdentifier)) }
        if let maxItems { query.append(("maxitems", String(maxItems))) }
        let request = AWSRequest(method: "GET", endpoint: endpoint,
                                 path: "/2013-04-01/hostedzone/\(AWSRequest.encode(segment: zone))/rrset", query: query)
        let root = try await call(request, operation: operation, resource: resource, expecting: "ListResourceRecordSetsResponse")
        guard let sets = root.child("ResourceRecordSets") else {
            throw invalid("no ResourceRecordSets", operation: operation, resource: resource)
        }
        var recordSets: [Route53RecordSet] = []
        for element in sets.children("ResourceRecordSet") {
            guard let name = element.string("Name"), let type = element.string("Type") else {
                throw invalid("a ResourceRecordSet without Name or Type", operation: operation, resource: resource)
            }
            var set = Route53RecordSet(name: name, type: type, setIdentifier: element.string("SetIdentifier"),
                                       weight: element.string("Weight").flatMap { Int($0) },
                                       ttl: element.string("TTL").flatMap { Int($0) },
                                       values: element.child("ResourceRecords")?.children("ResourceRecord")
                                           .compactMap { $0.string("Value") } ?? [],
                                       healthCheckId: element.string("HealthCheckId"))
            if let alias = element.child("AliasTarget") {
                set.aliasTarget = Route53AliasTarget(hostedZoneId: alias.string("HostedZoneId") ?? "",
                                                     dnsName: alias.string("DNSName") ?? "",
                                                     evaluateTargetHealth: alias.string("EvaluateTargetHealth") == "true")
            }
            recordSets.append(set)
        }
        return Route53RecordSetPage(recordSets: recordSets, isTruncated: root.string("IsTruncated") == "true",
                                    nextRecordName: root.string("NextRecordName"), nextRecordType: root.string("NextRecordType"),
                                    nextRecordIdentifier: root.string("NextRecordIdentifier"))
    }

    /// Every record set named `name` (of `type`, when given), across as many pages as it
    /// takes (`pageSize` record sets a page; nil: Route53's default of 100): the listing starts
    /// at the name and stops at the first record set past it. Names are compared as Route53
    /// writes them (trailing dot added, case ignored).
    ///
    /// A page that names, as the next start, a start already asked for is an `.invalidResponse`
    /// instead of a loop: moto 5.2.5 does exactly that inside a group of weighted record sets
    /// (it ignores `identifier` and never names a `NextRecordIdentifier`).
    public func recordSets(hostedZoneId: String, named name: String, type: String? = nil,
                           pageSize: Int? = nil) async throws -> [Route53RecordSet] {
        let wanted = Self.absolute(name)
        var found: [Route53RecordSet] = []
        var start = [wanted, type ?? "", ""]
        var starts: Set<[String]> = [start]
        while true {
            let page = try await listResourceRecordSets(hostedZoneId: hostedZoneId, startName: start[0],
                                                        startType: start[1].isEmpty ? nil : start[1],
                                                        startIdentifier: start[2].isEmpty ? nil : start[2], maxItems: pageSize)
            for set in page.recordSets {
                guard Self.absolute(set.name) == wanted else { return found }
                if let type, set.type != type { return found }
                found.append(set)
            }
            guard page.isTruncated, let next = page.nextRecordName else { return found }
            start = [next, page.nextRecordType ?? "", page.nextRecordIdentifier ?? ""]
            guard starts.insert(start).inserted else {
                throw AWSError(.invalidResponse,
                               "the listing does not advance: it names \(start.filter { !$0.isEmpty }.joined(separator: " ")) as the next start again",
                               service: signer.service, operation: "ListResourceRecordSets", resource: "hosted zone \(Self.bareId(hostedZoneId, prefix: "/hostedzone/"))")
            }
        }
    }

    /// The hosted zone `id` (with or without `/hostedzone/`).
    public func getHostedZone(id: String) async throws -> Route53HostedZone {
        let zone = Self.bareId(id, prefix: "/hostedzone/")
        let operation = "GetHostedZone"
        let resource = "hosted zone \(zone)"
        let request = AWSRequest(method: "GET", endpoint: endpoint, path: "/2013-04-01/hostedzone/\(AWSRequest.encode(segment: zone))")
        let root = try await call(request, operation: operation, resource: resource, expecting: "GetHostedZoneResponse")
        guard let hostedZone = root.child("HostedZone"), let id = hostedZone.string("Id"), let name = hostedZone.string("Name") else {
            throw invalid("no HostedZone with Id and Name", operation: operation, resource: resource)
        }
        return Route53HostedZone(id: Self.bareId(id, prefix: "/hostedzone/"), name: name,
                                 callerReference: hostedZone.string("CallerReference"),
                                 comment: hostedZone.path("Config", "Comment")?.text,
                                 privateZone: hostedZone.path("Config", "PrivateZone")?.text == "true",
                                 recordSetCount: hostedZone.string("ResourceRecordSetCount").flatMap { Int($0) })
    }

    // MARK: - Plumbing

    private func call(_ request: AWSRequest, operation: String, resource: String, expecting rootName: String) async throws -> XMLElement {
        let response = try await client.send(request, signer: signer, operation: operation, resource: resource)
        let root: XMLElement
        do {
            root = try XMLElement.parse(response.body)
        } catch {
            throw invalid("the answer is not XML (\(error))", operation: operation, resource: resource)
        }
        guard root.name == rootName else {
            throw invalid("the answer's root is <\(root.name)>, not <\(rootName)>", operation: operation, resource: resource)
        }
        return root
    }

    private func changeInfo(_ root: XMLElement, operation: String, resource: String) throws(AWSError) -> Route53ChangeInfo {
        guard let info = root.child("ChangeInfo"), let id = info.string("Id"), let status = info.string("Status") else {
            throw invalid("no ChangeInfo with Id and Status", operation: operation, resource: resource)
        }
        return Route53ChangeInfo(id: Self.bareId(id, prefix: "/change/"), status: .init(status),
                                 submittedAt: info.string("SubmittedAt"), comment: info.string("Comment"))
    }

    private func invalid(_ message: String, operation: String, resource: String) -> AWSError {
        AWSError(.invalidResponse, message, service: signer.service, operation: operation, resource: resource)
    }

    /// Refuses what Route53 would refuse, or moto would wrongly accept, before anything is sent.
    static func validate(_ changes: [Route53Change]) throws(AWSError) {
        guard !changes.isEmpty else { throw AWSError(.invalidRequest, "a change batch needs at least one change") }
        for change in changes {
            let set = change.recordSet
            let what = "\(change.action.rawValue) \(set.name) \(set.type)\(set.setIdentifier.map { " (\($0))" } ?? "")"
            guard !set.name.isEmpty, !set.type.isEmpty else { throw AWSError(.invalidRequest, "\(what): a record set needs a name and a type") }
            if let weight = set.weight {
                guard weightRange.contains(weight) else {
                    throw AWSError(.invalidRequest, "\(what): weight \(weight) is outside Route53's \(weightRange.lowerBound)–\(weightRange.upperBound)")
                }
                guard let id = set.setIdentifier, (1...128).contains(id.count) else {
                    throw AWSError(.invalidRequest, "\(what): a weighted record set needs a SetIdentifier of 1 to 128 characters")
                }
            }
            if let ttl = set.ttl, !(0...2_147_483_647).contains(ttl) {
                throw AWSError(.invalidRequest, "\(what): TTL \(ttl) is outside 0–2147483647")
            }
            switch (set.aliasTarget, set.values.isEmpty) {
            case (nil, true): throw AWSError(.invalidRequest, "\(what): a record set needs values or an alias target")
            case (_?, false): throw AWSError(.invalidRequest, "\(what): an alias record set has no values of its own")
            case (_?, true) where set.ttl != nil: throw AWSError(.invalidRequest, "\(what): an alias record set takes its target's TTL")
            case (nil, false) where set.ttl == nil: throw AWSError(.invalidRequest, "\(what): a record set with values needs a TTL")
            default: break
            }
        }
    }

    /// The `<ResourceRecordSet>` element of a change, in the order of Route53's schema.
    static func xml(_ set: Route53RecordSet) -> String {
        var xml = "<ResourceRecordSet><Name>\(escape(set.name))</Name><Type>\(escape(set.type))</Type>"
        if let id = set.setIdentifier { xml += "<SetIdentifier>\(escape(id))</SetIdentifier>" }
        if let weight = set.weight { xml += "<Weight>\(weight)</Weight>" }
        if let ttl = set.ttl { xml += "<TTL>\(ttl)</TTL>" }
        if !set.values.isEmpty {
            xml += "<ResourceRecords>" + set.values.map { "<ResourceRecord><Value>\(escape($0))</Value></ResourceRecord>" }.joined()
                + "</ResourceRecords>"
        }
        if let alias = set.aliasTarget {
            xml += "<AliasTarget><HostedZoneId>\(escape(alias.hostedZoneId))</HostedZoneId><DNSName>\(escape(alias.dnsName))</DNSName>"
                + "<EvaluateTargetHealth>\(alias.evaluateTargetHealth)</EvaluateTargetHealth></AliasTarget>"
        }
        if let health = set.healthCheckId { xml += "<HealthCheckId>\(escape(health))</HealthCheckId>" }
        return xml + "</ResourceRecordSet>"
    }

    /// Text for XML content: `&`, `<`, `>`, and both quotes escaped.
    static func escape(_ text: String) -> String {
        var out = ""
        out.reserveCapacity(text.utf8.count)
        for character in text {
            switch character {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&apos;"
            default: out.append(character)
            }
        }
        return out
    }

    /// `/hostedzone/Z1` → `Z1` (botocore strips the same prefixes).
    static func bareId(_ id: String, prefix: String) -> String {
        id.hasPrefix(prefix) ? String(id.dropFirst(prefix.count)) : id
    }

    /// `app.example.com` → `app.example.com.`, lower-cased, as Route53 compares names.
    static func absolute(_ name: String) -> String {
        let lower = name.lowercased()
        return lower.hasSuffix(".") ? lower : lower + "."
    }

    static func trimmingSlash(_ endpoint: String) -> String {
        endpoint.hasSuffix("/") ? String(endpoint.dropLast()) : endpoint
    }
}
