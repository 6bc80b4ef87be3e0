using Akka.Configuration;
using Npgsql;

namespace ActorSim.Persistence.Tests;

/// <summary>A PostgreSQL schema of the test class's own, dropped afterwards, and the actor-system
/// config that points the Marten journal and snapshot store at it.</summary>
public static class PostgresSchema
{
    public static string ConnectionString =>
        Environment.GetEnvironmentVariable("ACTORSIM_DB") is { Length: > 0 } s ? s
            : throw new InvalidOperationException("ACTORSIM_DB is not set: run the tests through scripts/test.sh");

    private static int _counter;

    public static string NewName(string prefix) =>
        $"{prefix}_{Environment.ProcessId}_{Interlocked.Increment(ref _counter)}_{Environment.TickCount64 % 100000}".ToLowerInvariant();

    public static Config AkkaConfig(string schema, string? connectionString = null, TimeSpan? outageLimit = null) =>
        MartenPersistence.Config(connectionString ?? ConnectionString, schema, outageLimit: outageLimit)
            .WithFallback(ConfigurationFactory.ParseString("akka.loglevel = WARNING\nakka.stdout-loglevel = WARNING"));

    /// <summary>The first column of every row <paramref name="query"/> returns, as text (an EXPLAIN's plan lines, say).</summary>
    public static async Task<List<string>> LinesAsync(NpgsqlCommand query)
    {
        var lines = new List<string>();
        await using var r = await query.ExecuteReaderAsync();
        while (await r.ReadAsync()) lines.Add(r.GetString(0));
        return lines;
    }

    /// <summary>Runs <paramref name="body"/> on a schema of its own that a store has just made (Marten's
    /// tables and the read side's), dropped afterwards.</summary>
    public static async Task WithStoreSchemaAsync(string prefix, Func<string, Task> body)
    {
        var schema = NewName(prefix);
        try
        {
            using (MartenStores.Create(ConnectionString, schema)) { }
            await body(schema);
        }
        finally
        {
            Drop(schema);
        }
    }

    public static void Drop(string schema)
    {
        using var conn = new NpgsqlConnection(ConnectionString);
        conn.Open();
        using var cmd = new NpgsqlCommand($"drop schema if exists {schema} cascade", conn);
        cmd.ExecuteNonQuery();
    }
}

/// <summary>One schema per test class, dropped when the class is done.</summary>
public sealed class SchemaFixture : IDisposable
{
    public string Name { get; } = PostgresSchema.NewName("t");
    public void Dispose() => PostgresSchema.Drop(Name);
}
