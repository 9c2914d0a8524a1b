import CSQLite
import Foundation

/// Owns one `sqlite3*` and closes it in `deinit`.
///
/// Not `Sendable`: a connection is used under its owner's lock (see `SQLiteJournal`).
final class SQLiteConnection {
    let handle: OpaquePointer
    let path: String

    /// `readOnly` opens an existing file only, never creating one (readers such as `report`).
    /// `immutable` reads the main file as it is, taking no lock and never touching its `-wal` or
    /// `-shm` files (a read-only filesystem, a full disk): what is only in the write-ahead log is
    /// not seen.
    init(path: String, readOnly: Bool = false, immutable: Bool = false) throws {
        var db: OpaquePointer?
        var flags = (readOnly || immutable ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE) | SQLITE_OPEN_NOMUTEX
        var name = path
        if immutable {
            var components = URLComponents()
            components.scheme = "file"
            components.path = path
            components.queryItems = [URLQueryItem(name: "immutable", value: "1")]
            name = components.string ?? path
            flags |= SQLITE_OPEN_URI
        }
        let rc = sqlite3_open_v2(name, &db, flags, nil)
        guard rc == SQLITE_OK, let db else {
            let message = db.map { String(cString: sqlite3_errmsg($0)) } ?? "out of memory"
            if let db { sqlite3_close_v2(db) }
            throw StoreError(.open, "\(path): \(message)")
        }
        handle = db
        self.path = path
    }

    deinit {
        sqlite3_close_v2(handle)
    }

    var lastError: String { String(cString: sqlite3_errmsg(handle)) }

    /// Runs SQL without results (schema, pragmas, BEGIN/COMMIT).
    func execute(_ sql: String) throws {
        var message: UnsafeMutablePointer<CChar>?
        let rc = sqlite3_exec(handle, sql, nil, nil, &message)
        if rc != SQLITE_OK {
            let text = message.map { String(cString: $0) } ?? lastError
            sqlite3_free(message)
            throw StoreError(.sqlite, "\(path): \(sql.prefix(80)): \(text)")
        }
    }

    func prepare(_ sql: String) throws -> SQLiteStatement {
        try SQLiteStatement(connection: self, sql: sql)
    }

    var lastInsertRowID: Int64 { sqlite3_last_insert_rowid(handle) }
    var changes: Int { Int(sqlite3_changes(handle)) }
}

/// Owns one `sqlite3_stmt*` and finalizes it in `deinit`; keeps its connection alive, since a
/// statement must be finalized before its database is closed.
final class SQLiteStatement {
    let handle: OpaquePointer
    let connection: SQLiteConnection
    let sql: String

    init(connection: SQLiteConnection, sql: String) throws {
        var statement: OpaquePointer?
        let rc = sqlite3_prepare_v2(connection.handle, sql, -1, &statement, nil)
        guard rc == SQLITE_OK, let statement else {
            throw StoreError(.sqlite, "\(connection.path): preparing \(sql.prefix(80)): \(connection.lastError)")
        }
        handle = statement
        self.connection = connection
        self.sql = sql
    }

    deinit {
        sqlite3_finalize(handle)
    }

    /// A value to bind to a `?` parameter.
    enum Value {
        case int(Int64)
        case double(Double)
        case text(String)
        case null

        static func optional(_ value: Int64?) -> Value { value.map { .int($0) } ?? .null }
        static func optional(_ value: Double?) -> Value { value.map { .double($0) } ?? .null }
        static func optional(_ value: String?) -> Value { value.map { .text($0) } ?? .null }
    }

    /// Resets, binds `values` to parameters 1…n, and steps through every row.
    func run(_ values: [Value], row: (SQLiteStatement) throws -> Void = { _ in }) throws {
        sqlite3_reset(handle)
        sqlite3_clear_bindings(handle)
        defer { sqlite3_reset(handle) }
        for (offset, value) in values.enumerated() {
            let index = Int32(offset + 1)
            let rc: Int32
            switch value {
            case .int(let v): rc = sqlite3_bind_int64(handle, index, v)
            case .double(let v): rc = sqlite3_bind_double(handle, index, v)
            case .text(let v): rc = switchover_sqlite3_bind_text_transient(handle, index, v, -1)
            case .null: rc = sqlite3_bind_null(handle, index)
            }
            guard rc == SQLITE_OK else { throw failure("binding parameter \(index)") }
        }
        while true {
            let rc = sqlite3_step(handle)
            if rc == SQLITE_DONE { return }
            guard rc == SQLITE_ROW else { throw failure("step") }
            try row(self)
        }
    }

    private func failure(_ what: String) -> StoreError {
        StoreError(.sqlite, "\(connection.path): \(what) of \(sql.prefix(80)): \(connection.lastError)")
    }

    func int(_ column: Int32) -> Int64 { sqlite3_column_int64(handle, column) }
    func double(_ column: Int32) -> Double { sqlite3_column_double(handle, column) }
    func isNull(_ column: Int32) -> Bool { sqlite3_column_type(handle, column) == SQLITE_NULL }
    func optionalInt(_ column: Int32) -> Int64? { isNull(column) ? nil : int(column) }
    func optionalDouble(_ column: Int32) -> Double? { isNull(column) ? nil : double(column) }
    func text(_ column: Int32) -> String {
        guard let pointer = sqlite3_column_text(handle, column) else { return "" }
        return String(cString: pointer)
    }
    func optionalText(_ column: Int32) -> String? { isNull(column) ? nil : text(column) }
}
