using Npgsql;

namespace ActorSim.Persistence.EventLog;

/// <summary>Says, through PostgreSQL, that a process is writing a run: a session-level advisory lock
/// on the run's id, held by a connection of its own for as long as the run is written. A second
/// <c>actorsim run --resume</c> of the same run would write its streams from a second writer, and
/// <c>actorsim delete</c> would take the streams from under it: both are refused while the lock is
/// held. PostgreSQL lets the lock go with the connection, so a process killed (kill -9) leaves none.
/// The connection is not pooled: closing it ends the session, and the lock with it, at once (a pooled
/// one keeps its session, and so the lock, until the pool reuses it).
/// <para>A database restart or a dropped connection ends the session too. <see cref="Keep"/> takes the
/// lock again when that happens; <see cref="Lost"/> says when it cannot: another session took it (or the
/// run was deleted) while this one had none.</para></summary>
public sealed class RunLock : IAsyncDisposable
{
    /// <summary>The lock's first key ("ASim"); the second is <c>hashtext(run id)</c>.</summary>
    internal const int Space = 0x4153696D;

    internal static readonly string Key = $"{Space}, hashtext(@run)";

    private readonly string _connectionString;
    private readonly string _run;
    private NpgsqlConnection? _connection;
    private int _pid; // the backend whose session holds the lock
    private readonly TaskCompletionSource<string> _lost = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly CancellationTokenSource _keeping = new();
    private Task _keeper = Task.CompletedTask;

    private RunLock(string connectionString, string run, NpgsqlConnection connection, int pid) =>
        (_connectionString, _run, _connection, _pid) = (connectionString, run, connection, pid);

    /// <summary>The lock, or null when another session holds it.</summary>
    public static async Task<RunLock?> TryAcquireAsync(string connectionString, string run, CancellationToken ct = default)
    {
        connectionString = Unpooled(connectionString);
        var (conn, pid) = await TryLockAsync(connectionString, run, ct);
        return conn is null ? null : new RunLock(connectionString, run, conn, pid);
    }

    private static string Unpooled(string connectionString) =>
        new NpgsqlConnectionStringBuilder(connectionString) { Pooling = false, CommandTimeout = 5 }.ConnectionString;

    /// <summary>A new session holding the lock, and its backend's pid; (null, 0) if another holds it.</summary>
    private static async Task<(NpgsqlConnection?, int)> TryLockAsync(string connectionString, string run, CancellationToken ct)
    {
        var conn = new NpgsqlConnection(connectionString);
        try
        {
            await conn.OpenAsync(ct);
            await using var cmd = new NpgsqlCommand($"select pg_try_advisory_lock({Key})", conn);
            cmd.Parameters.AddWithValue("run", run);
            if ((bool)(await cmd.ExecuteScalarAsync(ct))!) return (conn, conn.ProcessID);
        }
        catch
        {
            await conn.DisposeAsync();
            throw;
        }
        await conn.DisposeAsync();
        return (null, 0);
    }

    /// <summary>Completes, with why, when the lock is gone for good: its session ended (a database
    /// restart, a dropped connection) and, before <see cref="Keep"/> could take it again, another session
    /// took it (a <c>run --resume</c>) or the run was deleted. The writer should stop: its streams are
    /// no longer its own.</summary>
    public Task<string> Lost => _lost.Task;

    /// <summary>From now on, every <paramref name="every"/>, checks the lock's session and, once it has
    /// ended, takes the lock again on a new one, as long as <paramref name="runExists"/> (the run was not
    /// deleted in between). While the database is away it keeps trying; while the old session still
    /// holds the lock (its backend has not noticed the connection is gone) the lock is still this run's,
    /// so it waits for it to end.</summary>
    public void Keep(Func<CancellationToken, Task<bool>> runExists, TimeSpan every) =>
        _keeper = Task.Run(() => KeepLoop(runExists, every, _keeping.Token));

    private int _checks;

    /// <summary>How many checks <see cref="Keep"/> has made: what a test waits on instead of the clock.</summary>
    internal int Checks => Volatile.Read(ref _checks);

    private async Task KeepLoop(Func<CancellationToken, Task<bool>> runExists, TimeSpan every, CancellationToken ct)
    {
        while (!ct.IsCancellationRequested)
        {
            try
            {
                await Task.Delay(every, ct);
                if (_connection is not null)
                {
                    try
                    {
                        await using var ping = new NpgsqlCommand("select 1", _connection);
                        await ping.ExecuteScalarAsync(ct);
                        continue; // the session, and so the lock, is there
                    }
                    catch (Exception) when (!ct.IsCancellationRequested)
                    {
                        await _connection.DisposeAsync();
                        _connection = null;
                    }
                }
                var (conn, pid) = await TryLockAsync(_connectionString, _run, ct);
                if (conn is not null)
                {
                    bool exists;
                    try
                    {
                        exists = await runExists(ct);
                    }
                    catch
                    {
                        await ReleaseAsync(conn, _run); // not known yet: let it go, ask again next time
                        throw;
                    }
                    if (exists) { (_connection, _pid) = (conn, pid); continue; }
                    await ReleaseAsync(conn, _run);
                    _lost.TrySetResult($"run '{_run}' was deleted while the database had dropped its lock");
                    return;
                }
                if (await HolderAsync(ct) is { } holder && holder != _pid)
                {
                    _lost.TrySetResult($"run '{_run}': the database dropped its lock, and another session (backend pid {holder}) took it meanwhile (a second writer of the run)");
                    return;
                }
                // Held by this run's old session still, or let go since: try again next time.
            }
            catch (Exception) when (!ct.IsCancellationRequested)
            {
                // The database is away: try again next time.
            }
            catch (Exception)
            {
                return; // stopped
            }
            finally
            {
                Interlocked.Increment(ref _checks);
            }
        }
    }

    /// <summary>A <c>pg_locks l</c> row that is the granted lock of the run <paramref name="run"/> (an SQL
    /// expression): a lock on two int4 keys shows as classid = the first, objid = the second (as an oid),
    /// objsubid = 2.</summary>
    private static string HeldBy(string run) =>
        $"l.locktype = 'advisory' and l.granted and l.classid = {Space} and l.objid = hashtext({run})::oid and l.objsubid = 2";

    /// <summary>The backend pid of the session holding the lock, if any.</summary>
    private async Task<int?> HolderAsync(CancellationToken ct)
    {
        await using var conn = new NpgsqlConnection(_connectionString);
        await conn.OpenAsync(ct);
        await using var cmd = new NpgsqlCommand(
            $"select l.pid from pg_locks l where {HeldBy("@run")}", conn);
        cmd.Parameters.AddWithValue("run", _run);
        return await cmd.ExecuteScalarAsync(ct) is int pid ? pid : null;
    }

    /// <summary>Which of <paramref name="runs"/> a session holds the lock of now (from <c>pg_locks</c>,
    /// which shows every session's advisory locks).</summary>
    public static async Task<HashSet<string>> HeldAsync(string connectionString, IReadOnlyCollection<string> runs, CancellationToken ct = default)
    {
        var held = new HashSet<string>(StringComparer.Ordinal);
        if (runs.Count == 0) return held;
        await using var conn = new NpgsqlConnection(connectionString);
        await conn.OpenAsync(ct);
        await using var cmd = new NpgsqlCommand(
            $"select r from unnest(@runs) r where exists (select 1 from pg_locks l where {HeldBy("r")})", conn);
        cmd.Parameters.AddWithValue("runs", runs.ToArray());
        await using var r = await cmd.ExecuteReaderAsync(ct);
        while (await r.ReadAsync(ct)) held.Add(r.GetString(0));
        return held;
    }

    public async ValueTask DisposeAsync()
    {
        await _keeping.CancelAsync();
        await _keeper;
        _keeping.Dispose();
        if (_connection is not null) await ReleaseAsync(_connection, _run);
    }

    /// <summary>Lets the lock go and closes its session. Closing alone lets it go too, but only once the
    /// backend has read the connection's end, a moment after the close returns: a <c>delete</c> or a
    /// <c>--resume</c> started right after would still find it held. The explicit unlock is done when it
    /// returns; if it fails (the session is broken) the close still ends the session.</summary>
    private static async Task ReleaseAsync(NpgsqlConnection conn, string run)
    {
        try
        {
            await using var cmd = new NpgsqlCommand($"select pg_advisory_unlock({Key})", conn);
            cmd.Parameters.AddWithValue("run", run);
            await cmd.ExecuteScalarAsync();
        }
        catch (Exception)
        {
            // the session is gone, and the lock with it
        }
        finally
        {
            await conn.DisposeAsync();
        }
    }
}
