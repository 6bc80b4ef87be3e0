using Npgsql;

namespace ActorSim.Persistence.Tests;

/// <summary>The PostgreSQL that scripts/pg.sh starts is reachable with the connection string in
/// ACTORSIM_DB (scripts/test.sh sets it). No database, no pass: these tests fail, never skip.</summary>
public class LocalPostgresTests
{
    private static string ConnectionString =>
        Environment.GetEnvironmentVariable("ACTORSIM_DB")
        ?? throw new InvalidOperationException("ACTORSIM_DB is not set: run the tests through scripts/test.sh");

    [Fact]
    public async Task The_local_cluster_accepts_connections_as_the_actorsim_role()
    {
        await using var conn = new NpgsqlConnection(ConnectionString);
        await conn.OpenAsync();
        await using var cmd = new NpgsqlCommand("select current_user, current_database(), current_setting('server_version_num')::int", conn);
        await using var r = await cmd.ExecuteReaderAsync();
        Assert.True(await r.ReadAsync());
        Assert.Equal("actorsim", r.GetString(0));
        Assert.Equal("actorsim", r.GetString(1));
        Assert.InRange(r.GetInt32(2), 150000, 159999); // PostgreSQL 15
    }

    [Fact]
    public async Task The_cluster_listens_on_loopback_only()
    {
        await using var conn = new NpgsqlConnection(ConnectionString);
        await conn.OpenAsync();
        await using var cmd = new NpgsqlCommand("select current_setting('listen_addresses')", conn);
        Assert.Equal("127.0.0.1", (string?)await cmd.ExecuteScalarAsync());
    }

    [Fact]
    public async Task A_table_can_be_created_written_and_read_back_in_a_schema_of_its_own()
    {
        var schema = $"t_{Environment.ProcessId}_{Environment.TickCount64}";
        await using var conn = new NpgsqlConnection(ConnectionString);
        await conn.OpenAsync();
        try
        {
            await Exec(conn, $"create schema {schema}; create table {schema}.probe(id int primary key, v text)");
            await Exec(conn, $"insert into {schema}.probe values (1, 'VM_ALLOW_ANY_UNCACHED')");
            await using var cmd = new NpgsqlCommand($"select v from {schema}.probe where id = 1", conn);
            Assert.Equal("VM_ALLOW_ANY_UNCACHED", (string?)await cmd.ExecuteScalarAsync());
        }
        finally
        {
            await Exec(conn, $"drop schema if exists {schema} cascade");
        }
    }

    private static async Task Exec(NpgsqlConnection conn, string sql)
    {
        await using var cmd = new NpgsqlCommand(sql, conn);
        await cmd.ExecuteNonQueryAsync();
    }
}

public class StoreSettingsTests
{
    [Fact]
    public void The_stores_prepare_repeated_statements_and_skip_the_pool_reset_unless_the_connection_string_says_otherwise()
    {
        var on = new Npgsql.NpgsqlConnectionStringBuilder(MartenStores.WithStoreSettings("Host=h;Username=u;Password=p;Database=d"));
        Assert.Equal((32, 2, true, "p"), (on.MaxAutoPrepare, on.AutoPrepareMinUsages, on.NoResetOnClose, on.Password));
        const string mine = "Host=h;Username=u;Password=p;Database=d;Max Auto Prepare=5;No Reset On Close=false";
        Assert.Equal(mine, MartenStores.WithStoreSettings(mine));
        var reset = new Npgsql.NpgsqlConnectionStringBuilder(MartenStores.WithStoreSettings("Host=h;Username=u;Password=p;Database=d;No Reset On Close=false"));
        Assert.Equal((32, false), (reset.MaxAutoPrepare, reset.NoResetOnClose));
        var off = new Npgsql.NpgsqlConnectionStringBuilder(MartenStores.WithStoreSettings("Host=h;Username=u;Password=p;Database=d;Max Auto Prepare=0"));
        Assert.Equal((0, true), (off.MaxAutoPrepare, off.NoResetOnClose));
    }
}

/// <summary>A store created on a fresh schema compresses the large jsonb of its event table with lz4
/// (this PostgreSQL is built with it), also when it finds the table already created.</summary>
public sealed class ToastCompressionTests(SchemaFixture schema) : IClassFixture<SchemaFixture>
{
    [Fact]
    public async Task Events_compress_their_json_with_lz4()
    {
        using var store = MartenStores.Create(PostgresSchema.ConnectionString, schema.Name);
        await using var conn = new NpgsqlConnection(PostgresSchema.ConnectionString);
        await conn.OpenAsync();
        async Task<string[]> Methods()
        {
            await using var cmd = new NpgsqlCommand(
                "select a.attname || ':' || a.attcompression::text from pg_attribute a join pg_class c on c.oid = a.attrelid " +
                "join pg_namespace n on n.oid = c.relnamespace where n.nspname = @s and c.relname = 'mt_events' " +
                "and a.attname in ('data', 'bdata') order by a.attname", conn);
            cmd.Parameters.AddWithValue("s", schema.Name);
            var list = new List<string>();
            await using var r = await cmd.ExecuteReaderAsync();
            while (await r.ReadAsync()) list.Add(r.GetString(0));
            return [.. list];
        }
        Assert.Equal(["bdata:l", "data:l"], await Methods());
        // Set back to the server's default, a second store on the same schema sets lz4 again.
        await using (var back = new NpgsqlCommand($"alter table {schema.Name}.mt_events alter column data set compression default, alter column bdata set compression default", conn))
            await back.ExecuteNonQueryAsync();
        Assert.Equal(["bdata:", "data:"], await Methods());
        using var again = MartenStores.Create(PostgresSchema.ConnectionString, schema.Name);
        Assert.Equal(["bdata:l", "data:l"], await Methods());
    }
}

/// <summary>A store whose making fails because its connection is lost: the database's error comes out
/// (the commands turn it into exit 3), and the next ask makes the store again.</summary>
public sealed class StoreCreationTests
{
    /// <summary>The schema lock's connection lost while the store was made: unlocking on it threw
    /// "Connection is not open" over PostgreSQL's error, and `actorsim export` ended unhandled (exit 134)
    /// when the database went away at that moment. And the Lazy that caches stores kept the failure for
    /// the life of the process. Here the store's schema check is held on a table another session has
    /// locked, the lock's connection ended meanwhile, and the table let go.</summary>
    [Fact]
    public async Task A_connection_lost_while_the_store_is_made_gives_the_database_error_and_the_next_ask_makes_it()
    {
        await PostgresSchema.WithStoreSchemaAsync("cut", async schema =>
        {
            // A key of its own in the process's store cache (the same database), and a name to find its sessions by.
            var app = $"store-cut-{schema}";
            var cs = new NpgsqlConnectionStringBuilder(PostgresSchema.ConnectionString) { ApplicationName = app }.ConnectionString;
            await using var locker = new NpgsqlConnection(PostgresSchema.ConnectionString);
            await locker.OpenAsync();
            var tx = await locker.BeginTransactionAsync();
            await using (var l = new NpgsqlCommand($"lock table {schema}.{ReadSide.DecisionRows.TableName} in access exclusive mode", locker, tx)) await l.ExecuteNonQueryAsync();

            var making = Task.Run(() => MartenStores.Get(cs, schema));
            // Watched from a session of its own: a transaction sees one snapshot of pg_stat_activity.
            await using var watcher = new NpgsqlConnection(PostgresSchema.ConnectionString);
            await watcher.OpenAsync();
            async Task<int?> Session(string where)
            {
                await using var q = new NpgsqlCommand($"select pid from pg_stat_activity where application_name = @app and {where}", watcher);
                q.Parameters.AddWithValue("app", app);
                return (int?)await q.ExecuteScalarAsync();
            }
            var held = false;
            for (var i = 0; i < 600 && !held && !making.IsCompleted; i++)
            {
                await Task.Delay(50);
                held = await Session("wait_event_type = 'Lock'") is not null;
            }
            Assert.True(held, "the store's schema check never waited on the locked table");
            var lockSession = await Session("query like '%pg_advisory_lock%'");
            Assert.NotNull(lockSession);
            await using (var kill = new NpgsqlCommand("select pg_terminate_backend(@pid)", watcher))
            {
                kill.Parameters.AddWithValue("pid", lockSession!.Value);
                await kill.ExecuteNonQueryAsync();
            }
            await tx.RollbackAsync();

            var e = await Assert.ThrowsAnyAsync<Exception>(() => making);
            Assert.True(e is NpgsqlException, $"{e.GetType().Name}: {e.Message}");
            Assert.NotNull(MartenStores.Get(cs, schema)); // made this time, not the first failure again
        });
    }
}
