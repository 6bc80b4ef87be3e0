using Npgsql;

namespace ActorSim.Persistence.EventLog;

/// <summary>Says, through PostgreSQL, that a process is writing a run: a session-level advisory lock
/// on the run's id, held by a connection of its own for as long as the run is written. A second
/// <c>actorsim run --resume</c> of the same run would write its streams from a second writer, and
/// <c>actorsim delete</c> would take the streams from under it: both are refused while the lock is
/// held. PostgreSQL lets the lock go with the connection, so a process killed (kill -9) leaves none.
/// A database outage that drops the connection drops the lock too; the run goes on without it.</summary>
public sealed class RunLock : IAsyncDisposable
{
    /// <summary>The lock's first key ("ASim"); the second is <c>hashtext(run id)</c>.</summary>
    internal const int Space = 0x4153696D;

    internal static readonly string Key = $"{Space}, hashtext(@run)";

    private readonly NpgsqlConnection _connection;

    private RunLock(NpgsqlConnection connection) => _connection = connection;

    /// <summary>The lock, or null when another session holds it.</summary>
    public static async Task<RunLock?> TryAcquireAsync(string connectionString, string run, CancellationToken ct = default)
    {
        var conn = new NpgsqlConnection(connectionString);
        try
        {
            await conn.OpenAsync(ct);
            await using var cmd = new NpgsqlCommand($"select pg_try_advisory_lock({Key})", conn);
            cmd.Parameters.AddWithValue("run", run);
            if ((bool)(await cmd.ExecuteScalarAsync(ct))!) return new RunLock(conn);
        }
        catch
        {
            await conn.DisposeAsync();
            throw;
        }
        await conn.DisposeAsync();
        return null;
    }

    /// <summary>Which of <paramref name="runs"/> a session holds the lock of now (from <c>pg_locks</c>,
    /// which shows every session's advisory locks).</summary>
    public static async Task<HashSet<string>> HeldAsync(string connectionString, IReadOnlyCollection<string> runs, CancellationToken ct = default)
    {
        var held = new HashSet<string>(StringComparer.Ordinal);
        if (runs.Count == 0) return held;
        await using var conn = new NpgsqlConnection(connectionString);
        await conn.OpenAsync(ct);
        // A lock on two int4 keys shows as classid = the first, objid = the second (as an oid), objsubid = 2.
        await using var cmd = new NpgsqlCommand(
            "select r from unnest(@runs) r where exists (select 1 from pg_locks l where l.locktype = 'advisory' and l.granted " +
            $"and l.classid = {Space} and l.objid = hashtext(r)::oid and l.objsubid = 2)", conn);
        cmd.Parameters.AddWithValue("runs", runs.ToArray());
        await using var r = await cmd.ExecuteReaderAsync(ct);
        while (await r.ReadAsync(ct)) held.Add(r.GetString(0));
        return held;
    }

    public ValueTask DisposeAsync() => _connection.DisposeAsync(); // the session ends: the lock goes with it
}
