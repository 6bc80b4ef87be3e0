using System.Text.Json;
using ActorSim.Persistence;
using ActorSim.Persistence.ReadSide;
using Npgsql;

namespace ActorSim.Host;

/// <summary>A connection string and where it came from, as messages say it (<c>--db</c>,
/// <c>ACTORSIM_DB</c>, <c>ConnectionStrings:ActorSim in PATH</c>): they name the source, never the
/// value. <paramref name="IsDefault"/>: the shipped appsettings.json's, the local cluster.</summary>
public sealed record DatabaseSetting(string ConnectionString, string Source, bool IsDefault = false);

/// <summary>Where the host's database is, and checks that it answers. Messages name host:port/db,
/// never the password.</summary>
public static class Database
{
    public const string SettingsFile = "appsettings.json";

    /// <summary>The key in appsettings.json, as Microsoft.Extensions.Configuration writes it.</summary>
    public const string SettingsKey = "ConnectionStrings:ActorSim";

    /// <summary>The appsettings.json beside the binary, which names the local cluster.</summary>
    private static string ShippedSettings => Path.GetFullPath(Path.Combine(AppContext.BaseDirectory, SettingsFile));

    /// <summary>Command-line over environment over appsettings.json (architecture.md "Commands and exit
    /// codes"): --db, else ACTORSIM_DB, else ConnectionStrings:ActorSim of the appsettings.json in the
    /// current directory, else of the one beside the binary (shipped with the local cluster that
    /// scripts/pg.sh starts: the default database); null when none names one. A settings file that is
    /// not JSON, or whose key is not a string, is bad input (exit 2, file:line).</summary>
    public static DatabaseSetting? Setting(string? option)
    {
        if (option is { Length: > 0 }) return new(option, "--db");
        if (Environment.GetEnvironmentVariable("ACTORSIM_DB") is { Length: > 0 } e) return new(e, "ACTORSIM_DB");
        return FromSettingsFiles(SettingsKey, "a connection string") is { } found
            ? new(found.Value, $"{SettingsKey} in {found.Path}", found.Path == ShippedSettings)
            : null;
    }

    /// <summary>The key in appsettings.json for how long the journal rides out a database outage.</summary>
    public const string OutageLimitKey = "ActorSim:OutageLimit";

    /// <summary>How long <c>run</c>'s journal rides out a database outage: --outage-limit, else
    /// ACTORSIM_OUTAGE_LIMIT, else ActorSim:OutageLimit in appsettings.json (the current directory's,
    /// else the shipped one's), else 60 s. A value that is not a duration, or is longer than
    /// <see cref="MaxOutageLimit"/>, is bad input naming where it came from (exit 2). <c>Source</c> says
    /// where it came from, as messages say it.</summary>
    public static (TimeSpan Limit, string Source) OutageLimit(string? option, string command)
    {
        TimeSpan Checked(string value, string where)
        {
            var limit = Commands.Args.ParseDuration(value) ?? throw new Commands.UsageException($"{command}: {where} '{value}' is not a duration (30s, 5m, 2h)");
            return limit <= MaxOutageLimit ? limit
                : throw new Commands.UsageException($"{command}: {where} '{value}' is longer than {MaxOutageLimit.TotalDays:0}d, the most a command waits for its database");
        }
        if (option is not null) return (Checked(option, "--outage-limit"), "--outage-limit");
        if (Environment.GetEnvironmentVariable("ACTORSIM_OUTAGE_LIMIT") is { Length: > 0 } env) return (Checked(env, "ACTORSIM_OUTAGE_LIMIT"), "ACTORSIM_OUTAGE_LIMIT");
        if (FromSettingsFiles(OutageLimitKey, "a duration") is { } found)
            return (Checked(found.Value, $"{found.Path}:{found.Line}: {OutageLimitKey}"), $"{OutageLimitKey} in {found.Path}");
        return (TimeSpan.FromSeconds(60), "default");
    }

    /// <summary>The longest outage limit: the waits built on it (the asks of the actors, 30 s past it;
    /// Akka's breakers, a minute past it) must stay within what .NET's timers take, about 49 days:
    /// <c>--outage-limit 100000d</c> ended the process unhandled (exit 134, "Parameter 'delay'").</summary>
    public static readonly TimeSpan MaxOutageLimit = TimeSpan.FromDays(30);

    /// <summary>A setting of the appsettings.json in the current directory, else of the one beside the
    /// binary: its value, the file and the value's line.</summary>
    private static (string Value, string Path, long Line)? FromSettingsFiles(string key, string what)
    {
        foreach (var path in new[] { Path.GetFullPath(SettingsFile), ShippedSettings })
            if (File.Exists(path) && ReadSetting(path, key, what) is { } found) return (found.Value, path, found.Line);
        return null;
    }

    /// <summary><see cref="Setting"/>, or a usage error naming every place a database can be given.</summary>
    public static DatabaseSetting Required(string command, string? option, bool inMemoryToo = false) =>
        Setting(option) ?? throw new Commands.UsageException(
            $"{command}: no database: give --db, set ACTORSIM_DB, or name one as {SettingsKey} in {SettingsFile}{(inMemoryToo ? " (--in-memory runs without one)" : "")}");

    /// <summary>ConnectionStrings:ActorSim of a settings file (keys matched ignoring case, the last of a
    /// repeated key wins, comments and trailing commas allowed: as Microsoft.Extensions.Configuration
    /// reads appsettings.json), or null when the file does not name one.</summary>
    internal static string? ReadSetting(string path) => ReadSetting(path, SettingsKey, "a connection string")?.Value;

    /// <summary>The string at <paramref name="key"/> ("Section:Name", as .NET's configuration names
    /// keys) of a settings file and its line, or null when the file has none; anything but a non-empty
    /// string there is bad input (<paramref name="what"/> says what it should be).</summary>
    internal static (string Value, long Line)? ReadSetting(string path, string key, string what)
    {
        var keyPath = key.Split(':');
        byte[] bytes;
        try
        {
            bytes = File.ReadAllBytes(path);
        }
        catch (Exception x) when (x is IOException or UnauthorizedAccessException)
        {
            throw new Commands.UsageException($"database: {path}: cannot read: {x.Message}");
        }
        var reader = new Utf8JsonReader(bytes, new JsonReaderOptions { CommentHandling = JsonCommentHandling.Skip, AllowTrailingCommas = true });
        (string, long)? found = null;
        var containers = new List<string?>(); // the property each open container is the value of
        string? property = null;
        try
        {
            while (reader.Read())
            {
                switch (reader.TokenType)
                {
                    case JsonTokenType.PropertyName:
                        property = reader.GetString();
                        break;
                    case JsonTokenType.StartObject or JsonTokenType.StartArray:
                        if (containers.Count == 0 && reader.TokenType != JsonTokenType.StartObject)
                            throw new Commands.UsageException($"database: {path}:{Line(bytes, reader.TokenStartIndex)}: not a JSON object");
                        if (AtKey()) throw NotWhatItShouldBe(reader.TokenStartIndex);
                        containers.Add(property);
                        property = null;
                        break;
                    case JsonTokenType.EndObject or JsonTokenType.EndArray:
                        containers.RemoveAt(containers.Count - 1);
                        break;
                    default:
                        if (containers.Count == 0)
                            throw new Commands.UsageException($"database: {path}:{Line(bytes, reader.TokenStartIndex)}: not a JSON object");
                        if (AtKey())
                            found = reader.TokenType == JsonTokenType.String && reader.GetString() is { Length: > 0 } s
                                ? (s, Line(bytes, reader.TokenStartIndex)) : throw NotWhatItShouldBe(reader.TokenStartIndex);
                        property = null;
                        break;
                }
            }
        }
        catch (JsonException x)
        {
            throw new Commands.UsageException($"database: {path}:{(x.LineNumber ?? 0) + 1}: not JSON ({x.Message.Split(" LineNumber:")[0]})");
        }
        return found;

        // Inside the sections the key names (containers[0] is the file's object), at its last name.
        bool AtKey() => containers.Count == keyPath.Length && IsKey(property, keyPath[^1])
            && keyPath[..^1].Select((name, i) => IsKey(containers[i + 1], name)).All(x => x);
        Exception NotWhatItShouldBe(long at) =>
            new Commands.UsageException($"{(key == SettingsKey ? "database" : "settings")}: {path}:{Line(bytes, at)}: {key} is not {what} (a non-empty JSON string)");
        static bool IsKey(string? name, string key) => string.Equals(name, key, StringComparison.OrdinalIgnoreCase);
        static long Line(byte[] b, long index) => b.AsSpan(0, (int)index).Count((byte)'\n') + 1;
    }

    /// <summary>Opens a connection, retrying a few times; on failure prints the address tried and
    /// returns false (the caller exits 3).</summary>
    public static async Task<bool> ReachableAsync(DatabaseSetting setting, int attempts = 3)
    {
        var connectionString = setting.ConnectionString;
        // A connection string that does not parse is bad input (exit 2), not an unreachable server; the
        // message names the key at fault, never a value (it could be the password).
        NpgsqlConnectionStringBuilder b;
        try
        {
            b = new NpgsqlConnectionStringBuilder(connectionString) { Timeout = 5 };
        }
        catch (Exception e) when (e is ArgumentException or FormatException)
        {
            // Only a key Npgsql knows is named: an unknown one could be a mistyped secret.
            var key = e is ArgumentException { ParamName: { Length: > 0 } p } && new NpgsqlConnectionStringBuilder().ContainsKey(p) ? $" (at '{p}')" : "";
            throw new Commands.UsageException($"database: the connection string ({setting.Source}) is not one Npgsql reads{key}");
        }
        for (var i = 1; ; i++)
        {
            try
            {
                await using var conn = new NpgsqlConnection(b.ConnectionString);
                await conn.OpenAsync();
                return true;
            }
            catch (PostgresException e) when (!Persistence.Journal.Outages.IsTransient(e))
            {
                // The server answered and refused: a wrong password, no such database or role. Said as
                // PostgreSQL says it (no secret in it) and not tried again; it was "unreachable after 3
                // attempts (PostgresException)", a second and a half later. Transient as the journal
                // counts it (a server starting up or shutting down, too many connections): tried again.
                Console.Error.WriteLine($"actorsim: database {MartenStores.Describe(connectionString)} ({setting.Source}) refused the connection: {e.SqlState}: {e.MessageText}");
                return false;
            }
            catch (Exception e) when (e is NpgsqlException or System.Net.Sockets.SocketException or TimeoutException or ArgumentException)
            {
                if (i >= attempts)
                {
                    Console.Error.WriteLine($"actorsim: database {MartenStores.Describe(connectionString)} ({setting.Source}) unreachable after {attempts} attempts ({Cause(e)})");
                    if (setting.IsDefault)
                        Console.Error.WriteLine("actorsim: that is the default, the local cluster: scripts/pg.sh start starts it (--db or ACTORSIM_DB names another database)");
                    return false;
                }
                await Task.Delay(TimeSpan.FromMilliseconds(500 * i));
            }
        }
    }

    /// <summary>Why a connection failed, as Npgsql says it, with the cause under it when that says more
    /// ("NpgsqlException: Failed to connect to 127.0.0.1:1: Connection refused"; the type alone said
    /// nothing of a refused port, an unknown host or a server without SSL). Npgsql's messages name the
    /// host, never the password.</summary>
    internal static string Cause(Exception e) =>
        $"{e.GetType().Name}: {e.Message.TrimEnd('.')}" +
        (e.InnerException is { Message: { Length: > 0 } inner } && !e.Message.Contains(inner, StringComparison.Ordinal) ? $": {inner}" : "");

    public static async Task RecordRunAsync(string connectionString, RunInfo info)
    {
        await using var session = MartenStores.Get(connectionString).LightweightSession();
        session.Store(info);
        await session.SaveChangesAsync();
    }

    /// <summary>Records that the run of <paramref name="info"/> ended (now), riding out a database outage for
    /// up to <paramref name="limit"/> as the journal's writes do, its news on standard output as theirs:
    /// a 6 s run with PostgreSQL stopped at its last moment had every event written and yet exited 3 at
    /// once ("database error"), its record left without an end (<c>runs</c>: stopped). Null once recorded;
    /// past the limit, why not (the command exits 3).</summary>
    public static async Task<string?> RecordRunEndAsync(string connectionString, RunInfo info, TimeSpan limit)
    {
        info.Ended = DateTimeOffset.UtcNow;
        string? givenUp = null;
        try
        {
            await Persistence.Journal.Outages.RideOut(async () => { await RecordRunAsync(connectionString, info); return true; }, limit, new(
                e => Console.WriteLine($"  database unreachable ({e.GetType().Name}): the run's end waits to be recorded (limit {limit.TotalSeconds:0}s)"),
                () => Console.WriteLine("  database back: the run's end recorded"),
                (after, e) => givenUp = Commands.OutageWatch.Unavailable(connectionString, new(after, e.GetType().Name), limit,
                    $"the end of run '{info.Id}' is not recorded (runs shows it stopped)")));
            return null;
        }
        catch (Exception) when (givenUp is not null)
        {
            return givenUp;
        }
    }

    /// <summary>Whether <paramref name="id"/> can name a run: its streams are "{run}/{stream}" and are
    /// found by that prefix (RunLog), so an empty id, or one with a '/', would take another run's streams
    /// for its own — `summary`, `replay` and `delete` of run "a" would read or delete those of "a/b".</summary>
    public static bool IsRunId(string id) => id.Length > 0 && !id.Contains('/');

    /// <summary>Whether a new run may be named <paramref name="id"/> (<c>run --run-id</c>, <c>import</c>): a
    /// run id with no control character either — a newline or a tab in one broke <c>runs</c>' table, and
    /// it could not be typed back. (Runs already so named can still be deleted: <see cref="IsRunId"/>.)</summary>
    public static bool IsNewRunId(string id) => IsRunId(id) && !id.Any(char.IsControl);

    /// <summary>Why <paramref name="id"/> cannot name a new run (<see cref="IsNewRunId"/>), its control
    /// characters written as escapes.</summary>
    public static string NotARunId(string id) =>
        $"'{Printable.Of(id)}' is not a run id (a run id is not empty and has no '/' and no control character)";

    /// <summary>A new run id: name (a scenario's, whose '/' and control characters become '-':
    /// <see cref="IsNewRunId"/>), UTC time, and a random suffix.</summary>
    public static string NewRunId(string name) =>
        $"{string.Concat(name.Select(c => c == '/' || char.IsControl(c) ? '-' : c))}-{DateTime.UtcNow:yyyyMMddTHHmmss}-{Random.Shared.Next(0x10000):x4}";
}
