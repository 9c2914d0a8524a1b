import Foundation
import SwitchoverNet

/// A target group in a forward action, with its weight (0–999).
public struct ELBv2WeightedTargetGroup: Sendable, Hashable {
    public var arn: String
    /// Nil when AWS lists none (a forward action with a single `TargetGroupArn`).
    public var weight: Int?

    public init(arn: String, weight: Int?) {
        self.arn = arn
        self.weight = weight
    }
}

/// Target group stickiness of a forward action: while it is on, a client keeps going to the
/// target group it first got for `durationSeconds`, whatever the weights say since.
public struct ELBv2Stickiness: Sendable, Hashable {
    public var enabled: Bool
    public var durationSeconds: Int?

    public init(enabled: Bool, durationSeconds: Int? = nil) {
        self.enabled = enabled
        self.durationSeconds = durationSeconds
    }
}

/// One of a listener's default actions. Only `forward` is read in detail: the others
/// (`redirect`, `fixed-response`, `authenticate-oidc`, ...) keep their type and order, so that a
/// caller can see they are there and refuse to replace them.
public struct ELBv2Action: Sendable, Hashable {
    public var type: String
    public var order: Int?
    /// A forward action's single target group, in the short form.
    public var targetGroupArn: String?
    /// A forward action's weighted target groups (AWS fills this in for the short form too).
    public var targetGroups: [ELBv2WeightedTargetGroup]
    public var stickiness: ELBv2Stickiness?

    public init(type: String, order: Int? = nil, targetGroupArn: String? = nil, targetGroups: [ELBv2WeightedTargetGroup] = [],
                stickiness: ELBv2Stickiness? = nil) {
        self.type = type
        self.order = order
        self.targetGroupArn = targetGroupArn
        self.targetGroups = targetGroups
        self.stickiness = stickiness
    }
}

/// A listener, as `DescribeListeners` describes it.
public struct ELBv2Listener: Sendable, Hashable {
    public var arn: String
    public var loadBalancerArn: String?
    public var port: Int?
    public var `protocol`: String?
    public var defaultActions: [ELBv2Action]

    public init(arn: String, loadBalancerArn: String? = nil, port: Int? = nil, protocol: String? = nil,
                defaultActions: [ELBv2Action]) {
        self.arn = arn
        self.loadBalancerArn = loadBalancerArn
        self.port = port
        self.protocol = `protocol`
        self.defaultActions = defaultActions
    }

    /// The weighted target groups of the default forward action (the last action, by order,
    /// when it is a forward), or nil when the listener does not forward by default.
    public var forwardTargetGroups: [ELBv2WeightedTargetGroup]? {
        let forward = defaultActions.sorted { ($0.order ?? .max) < ($1.order ?? .max) }.last { $0.type == "forward" }
        guard let forward else { return nil }
        if !forward.targetGroups.isEmpty { return forward.targetGroups }
        return forward.targetGroupArn.map { [ELBv2WeightedTargetGroup(arn: $0, weight: nil)] }
    }
}

/// The Elastic Load Balancing v2 calls an ALB switchover needs, over the Query API
/// (`Version=2015-12-01`, form-encoded POST bodies, XML answers), signed for the service
/// `elasticloadbalancing` in the load balancer's region.
///
/// Weights are 0–999, at most 5 target groups per forward action: checked here before anything
/// is sent (moto accepts 1001).
public struct ELBv2Client: Sendable {
    public static let apiVersion = "2015-12-01"
    public static let weightRange = 0...999
    public static let maxTargetGroups = 5

    public let client: AWSClient
    public let region: String
    public let endpoint: String
    public let signer: SigV4Signer

    /// `endpoint` defaults to `https://elasticloadbalancing.<region>.amazonaws.com`.
    public init(client: AWSClient, region: String, endpoint: String? = nil) {
        self.client = client
        self.region = region
        let given = endpoint ?? "https://elasticloadbalancing.\(region).amazonaws.com"
        self.endpoint = given.hasSuffix("/") ? String(given.dropLast()) : given
        self.signer = SigV4Signer(service: "elasticloadbalancing", region: region)
    }

    /// The listeners named (all of them; AWS answers `ListenerNotFound` if one is unknown).
    public func describeListeners(listenerArns: [String]) async throws -> [ELBv2Listener] {
        let operation = "DescribeListeners"
        let resource = listenerArns.count == 1 ? "listener \(listenerArns[0])" : "\(listenerArns.count) listeners"
        var parameters: [(String, String)] = []
        for (index, arn) in listenerArns.enumerated() { parameters.append(("ListenerArns.member.\(index + 1)", arn)) }
        let result = try await call(operation, parameters, resource: resource)
        return try listeners(in: result, operation: operation, resource: resource)
    }

    /// Replaces the listener's default actions with one forward action over `targetGroups`
    /// at their weights (and `stickiness`, when given: pass back what `describeListeners` read,
    /// or stickiness is switched off). Returns the listener as AWS describes it afterwards.
    public func modifyListener(listenerArn: String, targetGroups: [(arn: String, weight: Int)],
                               stickiness: ELBv2Stickiness? = nil) async throws -> ELBv2Listener {
        let operation = "ModifyListener"
        let resource = "listener \(listenerArn)"
        func refuse(_ message: String) -> AWSError {
            AWSError(.invalidRequest, message, service: signer.service, operation: operation, resource: resource)
        }
        guard !targetGroups.isEmpty, targetGroups.count <= Self.maxTargetGroups else {
            throw refuse("a forward action takes 1 to \(Self.maxTargetGroups) target groups, not \(targetGroups.count)")
        }
        for group in targetGroups where !Self.weightRange.contains(group.weight) {
            throw refuse("weight \(group.weight) of \(group.arn) is outside the ALB's \(Self.weightRange.lowerBound)–\(Self.weightRange.upperBound)")
        }
        guard Set(targetGroups.map(\.arn)).count == targetGroups.count else { throw refuse("a target group is listed twice") }

        let action = "DefaultActions.member.1"
        var parameters: [(String, String)] = [("ListenerArn", listenerArn), ("\(action).Type", "forward")]
        for (index, group) in targetGroups.enumerated() {
            let member = "\(action).ForwardConfig.TargetGroups.member.\(index + 1)"
            parameters += [("\(member).TargetGroupArn", group.arn), ("\(member).Weight", String(group.weight))]
        }
        if let stickiness {
            parameters.append(("\(action).ForwardConfig.TargetGroupStickinessConfig.Enabled", stickiness.enabled ? "true" : "false"))
            if let seconds = stickiness.durationSeconds {
                parameters.append(("\(action).ForwardConfig.TargetGroupStickinessConfig.DurationSeconds", String(seconds)))
            }
        }
        let result = try await call(operation, parameters, resource: resource)
        guard let listener = try listeners(in: result, operation: operation, resource: resource).first else {
            throw AWSError(.invalidResponse, "ModifyListener answered no listener", service: signer.service,
                           operation: operation, resource: resource)
        }
        return listener
    }

    // MARK: - Plumbing

    /// POSTs `Action=<operation>&Version=...&<parameters>` and returns `<operation>Result`.
    private func call(_ operation: String, _ parameters: [(String, String)], resource: String) async throws -> XMLElement {
        let form = ([("Action", operation), ("Version", Self.apiVersion)] + parameters)
            .map { "\(SigV4Signer.encode($0.0))=\(SigV4Signer.encode($0.1))" }
            .joined(separator: "&")
        let request = AWSRequest(method: "POST", endpoint: endpoint, path: "/",
                                 headers: [HTTPHeader("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")],
                                 body: Data(form.utf8))
        let response = try await client.send(request, signer: signer, operation: operation, resource: resource)
        let root: XMLElement
        do {
            root = try XMLElement.parse(response.body)
        } catch {
            throw AWSError(.invalidResponse, "the answer is not XML (\(error))", service: signer.service,
                           operation: operation, resource: resource)
        }
        guard root.name == "\(operation)Response", let result = root.child("\(operation)Result") else {
            throw AWSError(.invalidResponse, "the answer is <\(root.name)> without <\(operation)Result>", service: signer.service,
                           operation: operation, resource: resource)
        }
        return result
    }

    private func listeners(in result: XMLElement, operation: String, resource: String) throws(AWSError) -> [ELBv2Listener] {
        var listeners: [ELBv2Listener] = []
        for member in result.child("Listeners")?.children("member") ?? [] {
            guard let arn = member.string("ListenerArn") else {
                throw AWSError(.invalidResponse, "a listener without ListenerArn", service: signer.service,
                               operation: operation, resource: resource)
            }
            let actions = (member.child("DefaultActions")?.children("member") ?? []).map { action in
                let forward = action.child("ForwardConfig")
                let stickiness = forward?.child("TargetGroupStickinessConfig").map {
                    ELBv2Stickiness(enabled: $0.string("Enabled") == "true", durationSeconds: $0.string("DurationSeconds").flatMap { Int($0) })
                }
                return ELBv2Action(type: action.string("Type") ?? "", order: action.string("Order").flatMap { Int($0) },
                                   targetGroupArn: action.string("TargetGroupArn"),
                                   targetGroups: (forward?.child("TargetGroups")?.children("member") ?? []).compactMap { tuple in
                                       tuple.string("TargetGroupArn").map {
                                           ELBv2WeightedTargetGroup(arn: $0, weight: tuple.string("Weight").flatMap { Int($0) })
                                       }
                                   },
                                   stickiness: stickiness)
            }
            listeners.append(ELBv2Listener(arn: arn, loadBalancerArn: member.string("LoadBalancerArn"),
                                           port: member.string("Port").flatMap { Int($0) }, protocol: member.string("Protocol"),
                                           defaultActions: actions))
        }
        return listeners
    }
}
