// pgJDBC driver for the shared client scenario (scenario.json, handed over as a flat file by scenario.py).
// Run as a single-file source program: java -cp /usr/share/java/postgresql.jar Scenario.java
//   <jdbc url> <flat scenario file> <table prefix> <long-running sql> <cancel after ms>
// Prints the report (see scenario.py) as JSON on stdout.
import java.io.StringReader;
import java.io.StringWriter;
import java.math.BigDecimal;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.sql.Array;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.PreparedStatement;
import java.sql.Savepoint;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import org.postgresql.PGConnection;
import org.postgresql.PGNotification;
import java.time.LocalDate;
import java.time.LocalDateTime;
import java.time.LocalTime;
import java.time.OffsetDateTime;
import java.time.OffsetTime;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.postgresql.copy.CopyManager;
import org.postgresql.util.PGInterval;

public class Scenario {
    static String url, prefix, longSql;
    static long cancelMs;

    public static void main(String[] args) throws Exception {
        url = args[0];
        prefix = args[2];
        longSql = args[3];
        cancelMs = Long.parseLong(args[4]);
        List<String[]> types = new ArrayList<>();
        List<String[]> copyRows = new ArrayList<>();
        for (String line : Files.readAllLines(Path.of(args[1]), StandardCharsets.UTF_8)) {
            if (line.isEmpty()) continue;
            String[] f = line.split("\t", -1);
            String[] rest = new String[f.length - 1];
            for (int i = 1; i < f.length; i++) rest[i - 1] = unescape(f[i]);
            (f[0].equals("type") ? types : copyRows).add(rest);
        }
        Map<String, Object> values = new LinkedHashMap<>(), errors = new LinkedHashMap<>(),
                checks = new LinkedHashMap<>();
        try (Connection c = DriverManager.getConnection(url)) {
            for (String[] t : types) {
                String name = t[0], type = t[1], tb = prefix + "_" + name;
                StringBuilder ins = new StringBuilder("INSERT INTO " + tb + " (id, v) VALUES ");
                for (int i = 2; i < t.length; i++) ins.append(i > 2 ? ", " : "").append("(").append(i - 1).append(", ").append(t[i]).append(")");
                try (Statement st = c.createStatement()) {
                    st.execute("CREATE TABLE " + tb + " (id int PRIMARY KEY, v " + type + ")");
                    st.execute(ins.toString());
                    List<Object> cells = new ArrayList<>();
                    try (PreparedStatement ps = c.prepareStatement("SELECT v FROM " + tb + " ORDER BY id");
                         ResultSet rs = ps.executeQuery()) {
                        while (rs.next()) cells.add(cell(rs, type));
                    }
                    values.put(name, cells);
                } catch (Exception e) {
                    errors.put(name, err(e));
                }
            }
            check(checks, "rollback", () -> {
                try (Statement st = c.createStatement()) {
                    st.execute("CREATE TABLE " + prefix + "_txn (a int)");
                    c.setAutoCommit(false);
                    st.execute("INSERT INTO " + prefix + "_txn VALUES (1)");
                    c.rollback();
                    st.execute("INSERT INTO " + prefix + "_txn VALUES (2)");
                    c.commit();
                    c.setAutoCommit(true);
                    return join(st.executeQuery("SELECT a FROM " + prefix + "_txn ORDER BY a"));
                }
            });
            check(checks, "error_recovery", () -> {
                List<String> out = new ArrayList<>();
                try (Statement st = c.createStatement()) {
                    try { st.executeQuery("SELECT 1/0"); out.add("no error"); } catch (SQLException e) { out.add(e.getSQLState()); }
                    c.setAutoCommit(false);
                    for (String sql : new String[] {"SELECT * FROM no_such_table", "SELECT 1"}) {
                        try { st.executeQuery(sql); out.add("no error"); } catch (SQLException e) { out.add(e.getSQLState()); }
                    }
                    c.rollback();
                    c.setAutoCommit(true);
                    out.add(join(st.executeQuery("SELECT 42")));
                }
                return String.join(" ", out);
            });
            check(checks, "savepoint", () -> {
                try (Statement st = c.createStatement()) {
                    String tb = prefix + "_sp";
                    st.execute("CREATE TABLE " + tb + " (a int PRIMARY KEY)");
                    c.setAutoCommit(false);
                    st.execute("INSERT INTO " + tb + " VALUES (1)");
                    Savepoint sp = c.setSavepoint();
                    String state = "no error";
                    try { st.execute("INSERT INTO " + tb + " VALUES (1)"); } catch (SQLException e) { state = e.getSQLState(); }
                    c.rollback(sp);
                    st.execute("INSERT INTO " + tb + " VALUES (3)");
                    c.commit();
                    c.setAutoCommit(true);
                    return state + " " + join(st.executeQuery("SELECT a FROM " + tb + " ORDER BY a"));
                }
            });
            check(checks, "cancel", () -> {
                try (Statement st = c.createStatement()) {
                    st.execute("SET statement_timeout = '20s'");
                    Thread t = new Thread(() -> {
                        try { Thread.sleep(cancelMs); st.cancel(); } catch (Exception e) { /* reported by the query */ }
                    });
                    long started = System.nanoTime();
                    t.start();
                    String state;
                    try { st.executeQuery(longSql); state = "no error"; } catch (SQLException e) { state = e.getSQLState(); }
                    t.join();
                    double secs = (System.nanoTime() - started) / 1e9;
                    if (secs > 10) state = "slow(" + Math.round(secs) + "s) " + state;
                    st.execute("SET statement_timeout = 0");
                    return state + " " + join(st.executeQuery("SELECT 1"));
                }
            });
            CopyManager cm = c.unwrap(PGConnection.class).getCopyAPI();
            check(checks, "copy_in", () -> {
                try (Statement st = c.createStatement()) {
                    st.execute("CREATE TABLE " + prefix + "_copy (a int, b text)");
                    StringBuilder data = new StringBuilder();
                    for (String[] r : copyRows) data.append(r[0]).append('\t').append(copyField(r[1])).append('\n');
                    cm.copyIn("COPY " + prefix + "_copy (a, b) FROM STDIN", new StringReader(data.toString()));
                    List<String> out = new ArrayList<>();
                    try (ResultSet rs = st.executeQuery("SELECT a, b FROM " + prefix + "_copy ORDER BY a")) {
                        while (rs.next()) out.add(rs.getInt(1) + "|" + (rs.getString(2) == null ? "<NULL>" : rs.getString(2)));
                    }
                    return String.join(" ", out);
                }
            });
            check(checks, "copy_out", () -> {
                StringWriter w = new StringWriter();
                cm.copyOut("COPY (SELECT a, b FROM scenario_copysrc ORDER BY a) TO STDOUT", w);
                return w.toString();
            });
            check(checks, "prepared", () -> {
                List<String> out = new ArrayList<>();
                try (PreparedStatement ps = c.prepareStatement("SELECT ?::int8 * 2, ?::text || '!'")) {
                    String chars = "abcdefg";
                    for (int i = 1; i <= chars.length(); i++) {
                        ps.setLong(1, i);
                        ps.setString(2, chars.substring(i - 1, i));
                        try (ResultSet rs = ps.executeQuery()) { rs.next(); out.add(rs.getLong(1) + ":" + rs.getString(2)); }
                    }
                }
                return String.join(" ", out);
            });
            check(checks, "cursor", () -> {
                c.setAutoCommit(false);  // pgJDBC fetches with a portal (fetch size) only inside a transaction
                long n = 0, sum = 0;
                try (Statement st = c.createStatement()) {
                    st.setFetchSize(100);
                    try (ResultSet rs = st.executeQuery("SELECT i FROM generate_series(0, 999) g(i)")) {
                        while (rs.next()) { n++; sum += rs.getLong(1); }
                    }
                }
                c.commit();
                c.setAutoCommit(true);
                return n + " " + sum;
            });
            check(checks, "notify", () -> {
                try (Statement st = c.createStatement()) {
                    st.execute("LISTEN scen_events");
                    st.execute("NOTIFY scen_events, 'hello, world'");
                    PGNotification[] got = c.unwrap(PGConnection.class).getNotifications(5000);
                    st.execute("UNLISTEN scen_events");
                    List<String> out = new ArrayList<>();
                    if (got != null) for (PGNotification n : got) out.add(n.getName() + " " + n.getParameter());
                    return out.isEmpty() ? "no notification" : String.join(" | ", out);
                }
            });
            check(checks, "batch", () -> {
                try (Statement st = c.createStatement()) {
                    st.execute("CREATE TABLE " + prefix + "_batch (a int, b text)");
                    try (PreparedStatement ps = c.prepareStatement("INSERT INTO " + prefix + "_batch VALUES (?, ?)")) {
                        for (int i = 0; i < 100; i++) { ps.setInt(1, i); ps.setString(2, "r" + i); ps.addBatch(); }
                        ps.executeBatch();
                    }
                    try (ResultSet rs = st.executeQuery("SELECT count(*), sum(a) FROM " + prefix + "_batch")) {
                        rs.next();
                        return rs.getLong(1) + " " + rs.getLong(2);
                    }
                }
            });
        }
        Map<String, Object> rep = new LinkedHashMap<>();
        rep.put("values", values);
        rep.put("roundtrip", new LinkedHashMap<>());
        rep.put("errors", errors);
        rep.put("checks", checks);
        StringBuilder sb = new StringBuilder();
        json(sb, rep);
        System.out.print(sb);
    }

    interface Check { String run() throws Exception; }

    static void check(Map<String, Object> checks, String name, Check fn) {
        try { checks.put(name, fn.run()); } catch (Exception e) { checks.put(name, "ERROR " + err(e)); }
    }

    static String err(Exception e) {
        String state = e instanceof SQLException ? ((SQLException) e).getSQLState() + " " : "";
        return state + e.getClass().getSimpleName() + ": " + e.getMessage();
    }

    static String join(ResultSet rs) throws SQLException {
        List<String> out = new ArrayList<>();
        while (rs.next()) out.add(rs.getString(1));
        rs.close();
        return String.join(" ", out);
    }

    static String copyField(String v) {
        if (v == null) return "\\N";
        return v.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n");
    }

    static String unescape(String s) {
        if (s.equals("\\N")) return null;
        StringBuilder b = new StringBuilder();
        for (int i = 0; i < s.length(); i++) {
            char ch = s.charAt(i);
            if (ch == '\\' && i + 1 < s.length()) {
                char n = s.charAt(++i);
                b.append(n == 't' ? '\t' : n == 'n' ? '\n' : n == 'r' ? '\r' : n);
            } else b.append(ch);
        }
        return b.toString();
    }

    static String base(String type) { return type.replaceAll("\\(.*?\\)", "").replace("[]", ""); }

    /** One value read with pgJDBC's own conversions (java.time, BigDecimal, PGInterval, arrays). */
    static Object cell(ResultSet rs, String type) throws SQLException {
        String b = base(type);
        if (type.endsWith("[]")) {
            // Arrays of date/time/interval/json elements come back as legacy java.sql types that drop
            // microseconds and offsets: those are read as the server's array text.
            if (b.matches("date|time|timetz|timestamp|timestamptz|interval|json|jsonb")) return rs.getString(1);
            Array a = rs.getArray(1);
            return a == null ? null : arrayCell((Object[]) a.getArray(), b);
        }
        Object probe = rs.getObject(1);
        if (probe == null) return null;
        switch (b) {
            case "bool": return rs.getBoolean(1) ? "t" : "f";
            case "int2": case "int4": return Integer.toString(rs.getInt(1));
            case "int8": return Long.toString(rs.getLong(1));
            case "float4": return Float.toString(rs.getFloat(1));
            case "float8": return Double.toString(rs.getDouble(1));
            case "numeric": {
                String s = rs.getString(1);
                return s.equals("NaN") ? s : rs.getBigDecimal(1).toPlainString();
            }
            case "bytea": return hex(rs.getBytes(1));
            case "date": return rs.getObject(1, LocalDate.class).toString();
            case "time": return rs.getObject(1, LocalTime.class).toString();
            case "timetz": return rs.getObject(1, OffsetTime.class).toString();
            case "timestamp": return rs.getObject(1, LocalDateTime.class).toString();
            case "timestamptz": return rs.getObject(1, OffsetDateTime.class).toString();
            case "interval": return interval((PGInterval) probe);
            case "uuid": return probe.toString();
            default: return rs.getString(1);
        }
    }

    static Object arrayCell(Object[] items, String elem) {
        List<Object> out = new ArrayList<>();
        for (Object x : items) {
            if (x == null) out.add(null);
            else if (x instanceof Object[]) out.add(arrayCell((Object[]) x, elem));
            else if (x instanceof Boolean) out.add((Boolean) x ? "t" : "f");
            else if (x instanceof byte[]) out.add(hex((byte[]) x));
            else if (x instanceof BigDecimal) out.add(((BigDecimal) x).toPlainString());
            else out.add(x.toString());
        }
        return out;
    }

    static String hex(byte[] b) {
        StringBuilder s = new StringBuilder("\\x");
        for (byte x : b) s.append(String.format("%02x", x));
        return s.toString();
    }

    static String interval(PGInterval iv) {
        long months = iv.getYears() * 12L + iv.getMonths();
        long micros = ((iv.getHours() * 60L + iv.getMinutes()) * 60L + iv.getWholeSeconds()) * 1_000_000L + iv.getMicroSeconds();
        return "iv:" + months + ":" + iv.getDays() + ":" + micros;
    }

    @SuppressWarnings("unchecked")
    static void json(StringBuilder sb, Object o) {
        if (o == null) sb.append("null");
        else if (o instanceof Map) {
            sb.append('{');
            boolean first = true;
            for (Map.Entry<String, Object> e : ((Map<String, Object>) o).entrySet()) {
                if (!first) sb.append(',');
                first = false;
                json(sb, e.getKey());
                sb.append(':');
                json(sb, e.getValue());
            }
            sb.append('}');
        } else if (o instanceof List) {
            sb.append('[');
            boolean first = true;
            for (Object x : (List<Object>) o) { if (!first) sb.append(','); first = false; json(sb, x); }
            sb.append(']');
        } else {
            String s = o.toString();
            sb.append('"');
            for (int i = 0; i < s.length(); i++) {
                char ch = s.charAt(i);
                if (ch == '"' || ch == '\\') sb.append('\\').append(ch);
                else if (ch < 0x20) sb.append(String.format("\\u%04x", (int) ch));
                else sb.append(ch);
            }
            sb.append('"');
        }
    }
}
