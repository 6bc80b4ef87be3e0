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
    private static readonly ConcurrentDictionary<string, NpgsqlDataSource> DataSources = new(StringComparer.Ordinal);

    /// <summary>Makes an NpgsqlDataSource known to the plugins under <paramref name="name"/> (HOCON
    /// <c>data-source = "name"</c>), for hosts that build their own.</summary>
    public static void RegisterDataSource(string name, NpgsqlDataSource dataSource) => DataSources[name] = dataSource;

    /// <summary>The store a plugin's HOCON points at: <c>data-source</c>, else <c>connection-string</c>,
    /// else ACTORSIM_DB.</summary>
    public static DocumentStore FromConfig(Akka.Configuration.Config config)
    {
        var schema = config.GetString("schema", DefaultSchema);
        if (config.GetString("data-source", "") is { Length: > 0 } name)
        {
            if (!DataSources.TryGetValue(name, out var ds)) throw new InvalidOperationException($"no NpgsqlDataSource registered as '{name}'");
            return Cached(("datasource:" + name, schema), () => Create(o => o.Connection(ds), schema, ds.CreateConnection));
        }
        var cs = config.GetString("connection-string", "") is { Length: > 0 } s ? s : ConnectionStringFromEnvironment();
        return Get(cs, schema);
    }

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

    /// <summary>The store of this database and schema, made once per process.</summary>
    public static DocumentStore Get(string connectionString, string schema = DefaultSchema) =>
        Cached((connectionString, schema), () => Create(connectionString, schema));

    /// <summary>The store made once for <paramref name="key"/>. A store whose making failed (the database
    /// went away while its schema was checked) is not kept: the next call tries again, where the Lazy
    /// would have thrown the same exception for the life of the process.</summary>
    private static DocumentStore Cached((string, string) key, Func<DocumentStore> create)
    {
        var lazy = Stores.GetOrAdd(key, _ => new Lazy<DocumentStore>(create));
        try
        {
            return lazy.Value;
        }
        catch
        {
            Stores.TryRemove(KeyValuePair.Create(key, lazy));
            throw;
        }
    }

    public static DocumentStore Create(string connectionString, string schema)
    {
        var cs = WithStoreSettings(connectionString);
        return Create(o => o.Connection(cs), schema, () => new NpgsqlConnection(cs));
    }

    /// <summary>The session's Npgsql connection, opened if it is not yet: for the statements the store
    /// reads with plain SQL (the run log, the global order, the decision rows).</summary>
    internal static async Task<NpgsqlConnection> OpenConnectionAsync(this IQuerySession session, CancellationToken ct)
    {
        var conn = (NpgsqlConnection)session.Connection!;
        if (conn.State != System.Data.ConnectionState.Open) await conn.OpenAsync(ct).ConfigureAwait(false);
        return conn;
    }

    /// <summary>The connection settings the stores use, each unless the connection string already says
    /// how (a data source a host registers keeps its own settings):
    /// <list type="bullet">
    /// <item>Npgsql prepares a statement after its second use on a connection: the journal sends the
    /// same few statements (Marten's quick append, the projection's insert) thousands of times, and
    /// without it PostgreSQL parsed and planned each one again — the pool's reset after each commit
    /// (DISCARD ALL) dropped even plpgsql's cached plans. Measured side by side (bench --quick, 2 VMs x
    /// 8 vCPUs, three alternations): durable batched 1.8–2.3 k → 3.3–3.8 k decisions/s.</item>
    /// <item>No reset when a connection goes back to the pool: the reset (RESET ALL, CLOSE ALL, UNLISTEN,
    /// advisory unlock, DISCARD SEQUENCES/TEMP) was one more round trip per journal commit, 0.1 ms of
    /// PostgreSQL's time each (statement log) on a path that leaves no session state behind — no SET,
    /// LISTEN, temp table or session advisory lock outlives a statement here (the schema lock is
    /// released explicitly). Measured side by side (2 VMs x 8 vCPUs, two alternations): mean journal
    /// commit 1.19–1.23 ms → 0.75–0.81 ms, durable 2.1–2.4 k → 2.7–3.0 k decisions/s.</item>
    /// </list></summary>
    public static string WithStoreSettings(string connectionString)
    {
        var b = new NpgsqlConnectionStringBuilder(connectionString);
        var given = b.ConnectionString;
        // The builder's ContainsKey says whether a keyword exists, not whether the string set it: ask
        // the normalized string (canonical keywords, only those set).
        var set = new System.Data.Common.DbConnectionStringBuilder { ConnectionString = given };
        if (!set.ContainsKey("Max Auto Prepare"))
        {
            b.MaxAutoPrepare = 32;
            b.AutoPrepareMinUsages = 2;
        }
        if (!set.ContainsKey("No Reset On Close")) b.NoResetOnClose = true;
        return b.ConnectionString == given ? connectionString : b.ConnectionString;
    }

    private static DocumentStore Create(Action<StoreOptions> connection, string schema, Func<NpgsqlConnection> lockConnection)
    {
        var store = Build(connection, schema, AutoCreate.CreateOrUpdate);
        // Several processes may start on a fresh database at once: create the schema under an advisory
        // lock so they do not race on CREATE TABLE / CREATE FUNCTION.
        using (var conn = lockConnection())
        {
            conn.Open();
            using (var l = new NpgsqlCommand("select pg_advisory_lock(hashtext(@s))", conn))
            {
                l.Parameters.AddWithValue("s", "actorsim-schema:" + schema);
                l.ExecuteNonQuery();
            }
            try
            {
                store.Storage.ApplyAllConfiguredChangesToDatabaseAsync().GetAwaiter().GetResult();
                UseLz4ForLargeJson(conn, store);
                using var copy = new NpgsqlCommand(ReadSide.DecisionRows.CopyFromDocumentsSql(schema), conn);
                copy.CommandTimeout = 0; // once, on a database from an earlier build: may be millions of rows
                copy.ExecuteNonQuery();
            }
            catch (Exception e) when (InsufficientPrivilege(e) && SchemaExists(conn, schema))
            {
                // A role that may read the schema but not change it (granted SELECT on its tables): the
                // catalog views hide the constraints of tables it does not own, so Marten took the primary
                // keys for missing and altered a table ("must be owner"), and every command, `runs`
                // included, ended there (exit 3). It uses the schema as it is; what it may not write
                // fails when written ("permission denied for table ...", exit 3).
                store.Dispose();
                store = Build(connection, schema, AutoCreate.None);
            }
            finally
            {
                // A connection that broke took its session, and the lock, with it; unlocking on it threw
                // "Connection is not open" over the error that broke it (exit 134, not 3).
                if (conn.State == System.Data.ConnectionState.Open)
                {
                    using var u = new NpgsqlCommand("select pg_advisory_unlock(hashtext(@s))", conn);
                    u.Parameters.AddWithValue("s", "actorsim-schema:" + schema);
                    u.ExecuteNonQuery();
                }
            }
        }
        return store;
    }

    /// <summary>Whether PostgreSQL refused a statement for the role's privileges (42501), under Marten's
    /// wrapper of a failed schema change (MartenSchemaException) or not.</summary>
    private static bool InsufficientPrivilege(Exception e)
    {
        for (Exception? x = e; x is not null; x = x.InnerException)
            if (x is PostgresException { SqlState: PostgresErrorCodes.InsufficientPrivilege }) return true;
        return false;
    }

    /// <summary>Whether the schema's tables are there (the event table and the run records), made by
    /// a role that may.</summary>
    private static bool SchemaExists(NpgsqlConnection conn, string schema)
    {
        using var cmd = new NpgsqlCommand("select to_regclass(@e) is not null and to_regclass(@r) is not null", conn);
        cmd.Parameters.AddWithValue("e", $"{schema}.mt_events");
        cmd.Parameters.AddWithValue("r", $"{schema}.mt_doc_runinfo");
        return cmd.ExecuteScalar() is true;
    }

    private static DocumentStore Build(Action<StoreOptions> connection, string schema, AutoCreate autoCreate) =>
        DocumentStore.For(o =>
        {
            connection(o);
            o.DatabaseSchemaName = schema;
            o.AutoCreateSchemaObjects = autoCreate;
            o.Events.StreamIdentity = StreamIdentity.AsString;
            o.Events.AppendMode = EventAppendMode.Quick;
            o.Events.UseBinarySerializer<JournalEntry>(new JournalEntryBinary());
            o.Events.AddEventType<JournalEntry>();
            o.Schema.For<JournalMetadata>();
            o.Schema.For<SnapshotDocument>().Index(x => x.PersistenceId);
            o.Storage.ExtendedSchemaObjects.Add(ReadSide.DecisionRows.Table(schema));
            o.Storage.ExtendedSchemaObjects.Add(ReadSide.DecisionRows.EventsTable(schema));
            o.Schema.For<ReadSide.ViolationRow>().Index(x => x.Run);
            o.Schema.For<ReadSide.RunInfo>();
            o.Projections.Add(new ReadSide.DecisionProjection(), JasperFx.Events.Projections.ProjectionLifecycle.Inline);
            o.DisableNpgsqlLogging = true;
        });

    /// <summary>The event table's jsonb grows past PostgreSQL's TOAST threshold: compress it with lz4
    /// instead of pglz. A batch event holds ~63 decision records (~70 KB), and in a durable bench at
    /// 4 VMs x 64 vCPUs pglz_compress was 14 % of PostgreSQL's time (perf on its backends). Side by
    /// side (bench --quick --only durable, two alternations): PostgreSQL's CPU per decision 104 / 110 µs
    /// → 82 / 87 µs, durable 10.4 / 8.8 k → 12.3 / 11.9 k decisions/s at 4 x 64, 4.4 / 4.6 k → 4.8 / 5.4 k
    /// at 2 x 8. Only rows written from then on use it; a server without lz4 keeps pglz. The same for
    /// <c>bdata</c>, where entries are stored now (<see cref="JournalEntryBinary"/>): a batch of a few
    /// decisions is 2–4 KB, not packed, past the threshold.</summary>
    private static void UseLz4ForLargeJson(NpgsqlConnection conn, DocumentStore store)
    {
        var table = $"{store.Options.Events.DatabaseSchemaName}.mt_events";
        using var cmd = new NpgsqlCommand(
            "do $$ begin " +
            $"if (select attcompression from pg_attribute where attrelid = '{table}'::regclass and attname = 'data') <> 'l' then " +
            $"alter table {table} alter column data set compression lz4; end if; " +
            $"if (select attcompression from pg_attribute where attrelid = '{table}'::regclass and attname = 'bdata') <> 'l' then " +
            $"alter table {table} alter column bdata set compression lz4; end if; " +
            // No lz4 in this build (feature_not_supported); before PostgreSQL 14, no column compression.
            "exception when feature_not_supported or undefined_column or syntax_error then null; end $$", conn);
        cmd.ExecuteNonQuery();
    }
}
