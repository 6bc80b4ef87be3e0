using System.Collections.Concurrent;
using ActorSim.Persistence.Journal;
using JasperFx;
using JasperFx.Events;
using Marten;
using Npgsql;

namespace ActorSim.Persistence;

/// <summary>One Marten document store per (connection, schema), shared by the journal, the snapshot
/// store and the read side. The connection string comes from options or ACTORSIM_DB and is never
/// logged; errors name only the host and port.</summary>
public static class MartenStores
{
    private static readonly ConcurrentDictionary<(string, string), Lazy<DocumentStore>> Stores = new();

    public const string DefaultSchema = "actorsim";

    public static string ConnectionStringFromEnvironment() =>
        Environment.GetEnvironmentVariable("ACTORSIM_DB") is { Length: > 0 } s ? s
            : throw new InvalidOperationException("no database: set ACTORSIM_DB or pass a connection string");

    /// <summary>The host:port a connection string points at, for messages (never the password).</summary>
    public static string Describe(string connectionString)
    {
        try
        {
            var b = new NpgsqlConnectionStringBuilder(connectionString);
            return $"{b.Host}:{b.Port}/{b.Database}";
        }
        catch (ArgumentException)
        {
            return "(unparseable connection string)";
        }
    }

    public static DocumentStore Get(string connectionString, string schema = DefaultSchema) =>
        Stores.GetOrAdd((connectionString, schema), k => new Lazy<DocumentStore>(() => Create(k.Item1, k.Item2))).Value;

    public static DocumentStore Create(string connectionString, string schema)
    {
        var store = DocumentStore.For(o =>
        {
            o.Connection(connectionString);
            o.DatabaseSchemaName = schema;
            o.AutoCreateSchemaObjects = AutoCreate.CreateOrUpdate;
            o.Events.StreamIdentity = StreamIdentity.AsString;
            o.Events.AppendMode = EventAppendMode.Quick;
            o.Events.AddEventType<JournalEntry>();
            o.Schema.For<JournalMetadata>();
            o.Schema.For<SnapshotDocument>().Index(x => x.PersistenceId);
            o.Schema.For<ReadSide.DecisionRow>().Index(x => x.Run).Index(x => x.GpaPage);
            o.Schema.For<ReadSide.ViolationRow>().Index(x => x.Run);
            o.Schema.For<ReadSide.RunInfo>();
            o.Projections.Add<ReadSide.DecisionProjection>(JasperFx.Events.Projections.ProjectionLifecycle.Inline);
            o.DisableNpgsqlLogging = true;
        });
        store.Storage.ApplyAllConfiguredChangesToDatabaseAsync().GetAwaiter().GetResult();
        return store;
    }
}
