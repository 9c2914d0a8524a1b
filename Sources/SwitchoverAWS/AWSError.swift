import Foundation

/// A failed AWS call, or a call that could not be made: what kind of failure it was (what a
/// caller acts on), AWS's own error code and message (what an operator searches for), the HTTP
/// status, and which service, operation and resource it was about.
///
/// The kinds are deliberately few, because each one asks for a different reaction:
/// - `.credentials`: none could be found or they are incomplete; nothing was sent;
/// - `.authentication`: AWS refused who we are or what we may do (a wrong secret, an unknown or
///   expired key, a missing permission): retrying will not help, a person must;
/// - `.throttled`: AWS asked us to slow down, and the client's retries with backoff ran out;
/// - `.notFound`: the hosted zone, change, listener or target group named does not exist;
/// - `.unavailable`: no answer (connection refused, timeout) or a 5xx: the endpoint is down;
/// - `.invalidRequest`: refused before sending (a weight out of range, a bad endpoint);
/// - `.invalidResponse`: a 2xx whose body is not what the API documents;
/// - `.other`: any other AWS error; `code` says which.
///
/// Never holds a secret: messages AWS echoes back (a `SignatureDoesNotMatch` can quote the
/// canonical request, session token included) are scrubbed by the client before they land here.
public struct AWSError: Error, Sendable, CustomStringConvertible {
    /// A struct over a private enum, so kinds can be added without breaking callers' switches.
    public struct Kind: Hashable, Sendable, CustomStringConvertible {
        private enum Base: Hashable, Sendable {
            case credentials, authentication, throttled, notFound, unavailable, invalidRequest, invalidResponse, other
        }
        private let base: Base
        private init(_ base: Base) { self.base = base }

        public static let credentials = Kind(.credentials)
        public static let authentication = Kind(.authentication)
        public static let throttled = Kind(.throttled)
        public static let notFound = Kind(.notFound)
        public static let unavailable = Kind(.unavailable)
        public static let invalidRequest = Kind(.invalidRequest)
        public static let invalidResponse = Kind(.invalidResponse)
        public static let other = Kind(.other)

        public var description: String {
            switch base {
            case .credentials: "missing credentials"
            case .authentication: "authentication failed"
            case .throttled: "throttled"
            case .notFound: "not found"
            case .unavailable: "unavailable"
            case .invalidRequest: "invalid request"
            case .invalidResponse: "invalid response"
            case .other: "AWS error"
            }
        }
    }

    public let kind: Kind
    /// AWS's error code (`SignatureDoesNotMatch`, `NoSuchHostedZone`, `Throttling`, ...), when
    /// the answer carried one.
    public let code: String?
    /// AWS's message, or ours when no answer carried one.
    public let message: String
    /// The HTTP status of the answer; nil when none arrived.
    public let httpStatus: Int?
    /// The signing name of the service (`route53`, `elasticloadbalancing`), when a call was made.
    public let service: String?
    /// The API operation (`ChangeResourceRecordSets`, `ModifyListener`), when a call was made.
    public let operation: String?
    /// What the call was about (a hosted zone id, a listener ARN), for messages.
    public let resource: String?
    /// AWS's request id (`x-amzn-RequestId`, `<RequestId>`), for a support case.
    public let requestId: String?
    /// How many times the request was sent (throttled answers are retried).
    public let attempts: Int

    public init(_ kind: Kind, _ message: String, code: String? = nil, httpStatus: Int? = nil, service: String? = nil,
                operation: String? = nil, resource: String? = nil, requestId: String? = nil, attempts: Int = 0) {
        self.kind = kind
        self.message = message
        self.code = code
        self.httpStatus = httpStatus
        self.service = service
        self.operation = operation
        self.resource = resource
        self.requestId = requestId
        self.attempts = attempts
    }

    /// `route53 ChangeResourceRecordSets (hosted zone Z1): authentication failed: SignatureDoesNotMatch
    /// (HTTP 403): The request signature we calculated does not match ...`
    public var description: String {
        var text = ""
        if let service { text += service }
        if let operation { text += (text.isEmpty ? "" : " ") + operation }
        if let resource { text += " (\(resource))" }
        text += (text.isEmpty ? "" : ": ") + "\(kind)"
        if let code {
            text += ": \(code)"
            if let httpStatus { text += " (HTTP \(httpStatus))" }
        } else if let httpStatus {
            text += ": HTTP \(httpStatus)"
        }
        text += ": \(message)"
        if attempts > 1 { text += " (after \(attempts) attempts)" }
        return text
    }

    /// The same error with the call's context filled in where it was missing.
    func with(service: String? = nil, operation: String? = nil, resource: String? = nil, attempts: Int? = nil) -> AWSError {
        AWSError(kind, message, code: code, httpStatus: httpStatus, service: self.service ?? service,
                 operation: self.operation ?? operation, resource: self.resource ?? resource, requestId: requestId,
                 attempts: attempts ?? self.attempts)
    }

    // MARK: - Classification

    /// Codes meaning AWS refused the caller's identity or permissions.
    static let authenticationCodes: Set<String> = [
        "SignatureDoesNotMatch", "InvalidClientTokenId", "InvalidAccessKeyId", "UnrecognizedClientException",
        "IncompleteSignature", "MissingAuthenticationToken", "MissingAuthenticationTokenException",
        "ExpiredToken", "ExpiredTokenException", "InvalidToken", "TokenRefreshRequired", "RequestExpired",
        "RequestTimeTooSkewed", "InvalidSignatureException", "AuthFailure", "AccessDenied",
        "AccessDeniedException", "UnauthorizedOperation", "NotAuthorizedException", "OptInRequired",
    ]

    /// botocore's list of throttling codes (its standard retry mode), which HTTP 429 joins.
    static let throttlingCodes: Set<String> = [
        "Throttling", "ThrottlingException", "ThrottledException", "RequestThrottledException",
        "TooManyRequestsException", "ProvisionedThroughputExceededException", "TransactionInProgressException",
        "RequestLimitExceeded", "BandwidthLimitExceeded", "LimitExceededException", "RequestThrottled",
        "SlowDown", "PriorRequestNotComplete", "EC2ThrottledException",
    ]

    /// Codes naming a resource that does not exist, in the services this module calls.
    static let notFoundCodes: Set<String> = [
        "NoSuchHostedZone", "NoSuchChange", "NoSuchHealthCheck", "HostedZoneNotFound", "NoSuchDelegationSet",
        "ListenerNotFound", "TargetGroupNotFound", "LoadBalancerNotFound", "RuleNotFound", "CertificateNotFound",
        "ResourceNotFoundException", "NotFoundException", "NoSuchEntity", "NoSuchKey", "NoSuchBucket",
    ]

    /// The kind an AWS error answer stands for: the code first (an S3 `SlowDown` comes as a
    /// 503, and is throttling), then the status.
    static func classify(code: String?, httpStatus: Int) -> Kind {
        if let code {
            if authenticationCodes.contains(code) { return .authentication }
            if throttlingCodes.contains(code) { return .throttled }
            if notFoundCodes.contains(code) || code.hasSuffix("NotFound") || code.hasPrefix("NoSuch") { return .notFound }
        }
        switch httpStatus {
        case 429: return .throttled
        case 401, 403: return .authentication
        case 500...599: return .unavailable
        default: return .other
        }
    }
}
