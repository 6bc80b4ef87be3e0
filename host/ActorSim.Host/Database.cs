using ActorSim.Persistence;
using ActorSim.Persistence.ReadSide;
using Npgsql;

namespace ActorSim.Host;

/// <summary>Where the host's database is, and checks that it answers. Messages name host:port/db,
/// never the password.</summary>
public static class Database
{
    /// <summary>--db, else ACTORSIM_DB, else null.</summary>
    public static string? ConnectionString(string? option) =>
        option is { Length: > 0 } ? option : Environment.GetEnvironmentVariable("ACTORSIM_DB") is { Length: > 0 } e ? e : null;

    /// <summary>Opens a connection, retrying a few times; on failure prints the address tried and
    /// returns false (the caller exits 3).</summary>
    public static async Task<bool> ReachableAsync(string connectionString, int attempts = 3)
    {
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
            throw new Commands.UsageException($"database: the connection string (--db or ACTORSIM_DB) is not one Npgsql reads{key}");
        }
        for (var i = 1; ; i++)
        {
            try
            {
                await using var conn = new NpgsqlConnection(b.ConnectionString);
                await conn.OpenAsync();
                return true;
            }
            catch (Exception e) when (e is NpgsqlException or System.Net.Sockets.SocketException or TimeoutException or ArgumentException)
            {
                if (i >= attempts)
                {
                    Console.Error.WriteLine($"actorsim: database {MartenStores.Describe(connectionString)} unreachable after {attempts} attempts ({e.GetType().Name})");
                    return false;
                }
                await Task.Delay(TimeSpan.FromMilliseconds(500 * i));
            }
        }
    }

    public static async Task RecordRunAsync(string connectionString, RunInfo info)
    {
        await using var session = MartenStores.Get(connectionString).LightweightSession();
        session.Store(info);
        await session.SaveChangesAsync();
    }

    /// <summary>The git commit the host was built from, when it runs from a checkout.</summary>
    public static string? GitCommit()
    {
        try
        {
            var psi = new System.Diagnostics.ProcessStartInfo("git", "rev-parse HEAD") { RedirectStandardOutput = true, RedirectStandardError = true, WorkingDirectory = AppContext.BaseDirectory };
            using var p = System.Diagnostics.Process.Start(psi);
            if (p is null || !p.WaitForExit(2000) || p.ExitCode != 0) return null;
            var s = p.StandardOutput.ReadToEnd().Trim();
            return s.Length == 40 ? s : null;
        }
        catch (Exception)
        {
            return null;
        }
    }

    /// <summary>A new run id: name, UTC time, and a random suffix.</summary>
    public static string NewRunId(string name) => $"{name}-{DateTime.UtcNow:yyyyMMddTHHmmss}-{Random.Shared.Next(0x10000):x4}";
}
