using Npgsql;

namespace ActorSim.Tests;

/// <summary>A run's lock (RunLock) as the database shows it, read and ended independently of the product's
/// own queries, for the test projects that check it.</summary>
public static class RunLockProbe
{
    /// <summary>The backend pid of the session holding <paramref name="run"/>'s lock, if any: a lock on two
    /// int4 keys shows in pg_locks as classid = the first ("ASim"), objid = the second, objsubid = 2.</summary>
    public static async Task<int?> HolderAsync(NpgsqlConnection conn, string run)
    {
        await using var cmd = new NpgsqlCommand(
            "select pid from pg_locks where locktype = 'advisory' and granted and classid = 1095985517 and objid = hashtext(@run)::oid and objsubid = 2", conn);
        cmd.Parameters.AddWithValue("run", run);
        return await cmd.ExecuteScalarAsync() is int pid ? pid : null;
    }

    /// <summary>Ends a backend's session as a database restart would, and waits (up to 5 s) until it is gone.</summary>
    public static async Task TerminateAsync(NpgsqlConnection conn, int pid)
    {
        await using var cmd = new NpgsqlCommand("select pg_terminate_backend(@pid, 5000)", conn);
        cmd.Parameters.AddWithValue("pid", pid);
        Assert.True((bool)(await cmd.ExecuteScalarAsync())!, $"backend {pid} did not end within 5 s");
    }
}
