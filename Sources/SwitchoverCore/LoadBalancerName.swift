/// The names Switchover writes into load-balancer commands: a cluster's servers (HAProxy
/// servers, Envoy clusters) and the HAProxy backend.
///
/// HAProxy's own rule for proxy and server names, for every driver: these names go into
/// runtime-API lines (`set server BACKEND/SERVER weight N`), where `;` starts another command,
/// blanks separate arguments, `/` separates backend from server and a line break ends the
/// line. A name with any of those would fail at the driver halfway into a run, or, on a path
/// that forgot to check, be an injection; so the loader refuses it at its line and column. The
/// same rule for Envoy keeps one cluster file valid for either driver.
public enum LoadBalancerName {
    /// What `isValid` accepts, as messages say it.
    public static let rule = "letters, digits, '-', '_', '.' and ':' only"

    public static func isValid(_ name: String) -> Bool {
        !name.isEmpty && name.unicodeScalars.allSatisfy {
            ($0.isASCII && $0.properties.isAlphabetic) || ("0"..."9").contains($0) || "-_.:".unicodeScalars.contains($0)
        }
    }
}
