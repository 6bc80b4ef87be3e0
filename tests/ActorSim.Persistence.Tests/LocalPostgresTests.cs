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
