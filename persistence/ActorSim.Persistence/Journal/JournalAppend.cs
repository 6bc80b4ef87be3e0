using Marten;
using NpgsqlTypes;
using Weasel.Postgresql;

namespace ActorSim.Persistence.Journal;

/// <summary>The journal's appends of one commit — every stream of it — as one statement on Marten's
/// event tables (<see cref="MartenJournal"/>): sent on the journal's own connection with the read
/// side's rows in the same statement (<see cref="StatementWith"/>), or, for a commit that also stores
/// documents, queued in a Marten session.
/// <para>Why not <c>session.Events.Append</c>: in Quick mode Marten calls its append function,
/// <c>mt_quick_append_events</c>, once per stream, and that plpgsql function inserts each event with a
/// statement of its own (a loop), reads the stream with another and updates it with a third. In the
/// journal-alone bench it was ~37 % of PostgreSQL's time (perf, PersistAll from 10 actors and Persist
/// from 100, side by side with the peer). Here the streams' update, the new streams and every event
/// are each one <c>… from unnest(…)</c> of typed arrays, in one statement.</para>
/// <para>The rows are those the function writes: the same columns and values — the <c>{}</c>
/// placeholder in <c>data</c> and the entry in <c>bdata</c> (<see cref="JournalEntryBinary"/>), the
/// event type's alias and .NET name from Marten's mapping, the tenant, <c>now()</c>, not archived; the
/// stream's version moved to its last event's, never lowered — so Marten reads them back as its own
/// (stream fetches, the read journal, the run log); seq_ids come from the same sequence, in the order
/// of the arrays (a stream's events in version order, streams in the order the commit lists them; a
/// sorted subquery is not pulled up, so <c>nextval</c> follows it).</para>
/// <para>What the function refuses fails the statement, so nothing of the commit is written: a stream
/// expected new (version 0) that exists collides on mt_streams' key; an existing stream that is not
/// at exactly its expected version, or is archived, is not moved by the update, and the statement then
/// inserts a stream row with a null id for it (a not-null violation, <see cref="IsConflict"/>) — no
/// function of our own in the schema, and no check after the statement, which on the journal's own
/// connection has already committed. A stale writer would also collide on mt_events' (stream_id,
/// version) key.</para></summary>
internal sealed class JournalAppend : Marten.Internal.Operations.IStorageOperation
{
    private readonly string _sql, _schema;
    private readonly string _tenant;
    private readonly string _eventType, _dotnetType;
    private readonly List<string> _streams = [];
    private readonly List<long> _expected = [];
    private readonly List<long> _last = [];
    private readonly List<string> _eventStream = [];
    private readonly List<long> _eventVersion = [];
    private readonly List<Guid> _eventId = [];
    private readonly List<byte[]> _eventData = [];

    public JournalAppend(DocumentStore store, string tenant)
    {
        var events = (Marten.Events.EventGraph)store.Options.Events;
        var mapping = events.EventMappingFor(typeof(JournalEntry));
        _schema = events.DatabaseSchemaName;
        _sql = SqlFor(_schema);
        _tenant = tenant;
        _eventType = mapping.EventTypeName;
        _dotnetType = mapping.DotNetTypeName;
    }

    /// <summary>A stream's events: <paramref name="entries"/> become versions
    /// <paramref name="expected"/> + 1 … + n.</summary>
    public void AddStream(string stream, long expected, IReadOnlyList<JournalEntry> entries)
    {
        _streams.Add(stream);
        _expected.Add(expected);
        _last.Add(expected + entries.Count);
        for (var i = 0; i < entries.Count; i++)
        {
            _eventStream.Add(stream);
            _eventVersion.Add(expected + 1 + i);
            _eventId.Add(Guid.CreateVersion7());
            _eventData.Add(JournalEntryBinary.Write(entries[i]));
        }
    }

    private static readonly System.Collections.Concurrent.ConcurrentDictionary<string, string> Sql = new(StringComparer.Ordinal);
    private static readonly System.Collections.Concurrent.ConcurrentDictionary<(string, string, ReadSide.DecisionRows.Parts), string> SqlWithRows = new();

    /// <summary>The statement for the event tables in <paramref name="schema"/>. Its <c>?</c>
    /// parameters: the streams (id, expected version, last version), the tenant, then the events' type
    /// alias, tenant and .NET type name, then the events (stream, version, id, entry). It returns how
    /// many events it appended.</summary>
    internal static string SqlFor(string schema) => Sql.GetOrAdd(schema, s => $"with {AppendCtes(s)} select count(*) from appended");

    /// <summary>The same statement with the read side's decision rows of its events
    /// (<see cref="ReadSide.DecisionRows.CtesAfterAppend"/>, tables in <paramref name="readSchema"/>)
    /// inserted by it too: their parameters follow the append's. One statement, so the rows take each
    /// event's seq_id from what the append returns rather than from an index probe of mt_events per
    /// event, and the commit is one statement to bind and execute, not two.</summary>
    internal static string SqlWithRowsFor(string schema, string readSchema, ReadSide.DecisionRows.Parts parts) => SqlWithRows.GetOrAdd((schema, readSchema, parts), k =>
        $"with {AppendCtes(k.Item1)}, {ReadSide.DecisionRows.CtesAfterAppend(k.Item2, k.Item3)} select count(*) from appended");

    private static string AppendCtes(string s) =>
        $"s as materialized (select * from unnest(?::varchar[], ?::bigint[], ?::bigint[]) as s(id, expected, last)), " +
        $"moved as (update {s}.mt_streams m set version = greatest(m.version, s.last), timestamp = now() from s " +
        "where s.expected > 0 and m.id = s.id and m.version = s.expected and not m.is_archived returning m.id), " +
        // New streams; and a null id, which fails the statement, for each stream that was expected to
        // exist at its version and was not moved.
        $"created as (insert into {s}.mt_streams (id, type, version, timestamp, tenant_id) " +
        "select case when s.expected = 0 then s.id end, null, s.last, now(), ?::varchar from s " +
        "where s.expected = 0 or not exists (select 1 from moved where moved.id = s.id) returning 1), " +
        $"appended as (insert into {s}.mt_events (seq_id, id, stream_id, version, data, bdata, type, tenant_id, timestamp, mt_dotnet_type, is_archived) " +
        $"select nextval('{s}.mt_events_sequence'), e.id, e.stream, e.version, '{{}}'::jsonb, e.bdata, ?::varchar, ?::varchar, (now() at time zone 'utc'), ?::varchar, false " +
        "from (select * from unnest(?::varchar[], ?::bigint[], ?::uuid[], ?::bytea[]) with ordinality as e(stream, version, id, bdata, n) order by e.n) e " +
        // Every CTE that writes runs to completion, read or not.
        "returning stream_id, version, seq_id)";

    /// <summary>Whether the statement failed because a stream of the commit was not where its writer
    /// expected: the null stream id it inserts for a stream not moved, or a collision on mt_events'
    /// (stream_id, version) or mt_streams' key — whichever PostgreSQL meets first (Marten reports the
    /// collision as its own concurrency exception).</summary>
    public static bool IsConflict(Exception e)
    {
        for (Exception? x = e; x is not null; x = x.InnerException)
        {
            if (x is JasperFx.Events.EventStreamUnexpectedMaxEventIdException) return true;
            if (x is Npgsql.PostgresException pg && (
                    (pg.SqlState == Npgsql.PostgresErrorCodes.NotNullViolation && pg.TableName == "mt_streams") ||
                    (pg.SqlState == Npgsql.PostgresErrorCodes.UniqueViolation && pg.ConstraintName is "pk_mt_events_stream_and_version" or "pkey_mt_streams_id")))
                return true;
        }
        return false;
    }

    /// <summary>The append and, if <paramref name="rows"/> has any, the decision rows of its events in
    /// one statement (<see cref="SqlWithRowsFor"/>); without rows, <see cref="Statement"/>.</summary>
    public TypedStatement StatementWith(ReadSide.DecisionRows.Batch? rows, string readSchema) =>
        rows is not { Rows: > 0 } ? Statement : new(SqlWithRowsFor(_schema, readSchema, rows.Parts), [.. Parameters(), .. rows.Parameters()]);

    public TypedStatement Statement => new(_sql, Parameters());

    private (object Value, NpgsqlDbType Type)[] Parameters() => [
        (_streams.ToArray(), NpgsqlDbType.Array | NpgsqlDbType.Varchar),
        (_expected.ToArray(), NpgsqlDbType.Array | NpgsqlDbType.Bigint),
        (_last.ToArray(), NpgsqlDbType.Array | NpgsqlDbType.Bigint),
        (_tenant, NpgsqlDbType.Varchar),
        (_eventType, NpgsqlDbType.Varchar),
        (_tenant, NpgsqlDbType.Varchar),
        (_dotnetType, NpgsqlDbType.Varchar),
        (_eventStream.ToArray(), NpgsqlDbType.Array | NpgsqlDbType.Varchar),
        (_eventVersion.ToArray(), NpgsqlDbType.Array | NpgsqlDbType.Bigint),
        (_eventId.ToArray(), NpgsqlDbType.Array | NpgsqlDbType.Uuid),
        (_eventData.ToArray(), NpgsqlDbType.Array | NpgsqlDbType.Bytea),
    ];

    public Type DocumentType => typeof(JournalEntry);

    public Weasel.Core.OperationRole Role() => Weasel.Core.OperationRole.Events;

    public void ConfigureCommand(ICommandBuilder builder, Weasel.Storage.IStorageSession session)
    {
        // Planned once for any arrays (see ReadSide.DecisionRows.GenericPlans); for the rest of the
        // transaction, so the decision rows' insert after it needs no statement of its own.
        builder.Append(ReadSide.DecisionRows.GenericPlans);
        builder.StartNewCommand();
        Statement.AppendTo(builder);
    }

    public Task PostprocessAsync(System.Data.Common.DbDataReader reader, IList<Exception> exceptions, CancellationToken token) => ReadResultAsync(reader, token);

    /// <summary>The statement's row: every event appended (anything else is a bug here, not a conflict:
    /// a conflict fails the statement).</summary>
    public async Task ReadResultAsync(System.Data.Common.DbDataReader reader, CancellationToken token)
    {
        var appended = await reader.ReadAsync(token).ConfigureAwait(false) ? reader.GetInt64(0) : -1;
        if (appended != _eventId.Count) throw new InvalidOperationException($"the journal's append wrote {appended} of {_eventId.Count} events");
    }
}

/// <summary>A commit's stream was not at the version its writer expected (another writer got there
/// first, or the write would leave a gap), or is archived. Nothing of the commit was written.</summary>
public sealed class JournalConflictException(string message, Exception inner) : Exception(message, inner);
