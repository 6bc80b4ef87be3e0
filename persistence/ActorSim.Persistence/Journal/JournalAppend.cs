using Marten;
using NpgsqlTypes;
using Weasel.Postgresql;

namespace ActorSim.Persistence.Journal;

/// <summary>The journal's appends of one commit — every stream of it — as one statement on Marten's
/// event tables, in Marten's batch and transaction (<see cref="MartenJournal"/>).
/// <para>Why not <c>session.Events.Append</c>: in Quick mode Marten calls its append function,
/// <c>mt_quick_append_events</c>, once per stream, and that plpgsql function inserts each event with a
/// statement of its own (a loop), checks the stream with another and updates it with a third. In the
/// journal-alone bench that function was ~37 % of PostgreSQL's time (perf, PersistAll from 10 actors
/// and Persist from 100, side by side with the peer): per event an executor start, per stream three
/// statements. Here the streams' checks, their updates, new streams and every event are one
/// <c>insert … select from unnest(…)</c> each, in one statement of typed arrays.</para>
/// <para>The rows are those the function writes: the same columns and values — the <c>{}</c>
/// placeholder in <c>data</c> and the entry in <c>bdata</c> (<see cref="JournalEntryBinary"/>), the
/// event type's alias and .NET name from Marten's mapping, the session's tenant, <c>now()</c>,
/// not archived; the stream's version moved to its last event's, never lowered — so Marten reads
/// them back as its own (stream fetches, the read journal, the run log), and the seq_ids come from the
/// same sequence, in the order of the arrays (a stream's events in version order, streams in the order
/// the commit lists them).</para>
/// <para>Checks, as the function makes them (it raises MT003 on a version mismatch): a stream
/// expected new (version 0) is inserted, so one that exists fails on mt_streams' key; an existing one
/// must be at exactly its expected version and not archived, and is moved on only then: the statement
/// returns how many streams it created and moved, and any shortfall fails the commit (the transaction
/// rolls back). A stale writer would also collide on mt_events' (stream_id, version) key.</para></summary>
internal sealed class JournalAppend : Marten.Internal.Operations.IStorageOperation
{
    private readonly string _sql;
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
        _sql = SqlFor(events.DatabaseSchemaName);
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

    /// <summary>The statement for the event tables in <paramref name="schema"/>. Its <c>?</c>
    /// parameters: the streams (id, expected version, last version), the tenant, then the events
    /// (stream, version, id, entry) and their type alias and .NET type name.</summary>
    internal static string SqlFor(string schema) => Sql.GetOrAdd(schema, s =>
        $"with s as materialized (select * from unnest(?::varchar[], ?::bigint[], ?::bigint[]) as s(id, expected, last)), " +
        $"moved as (update {s}.mt_streams m set version = greatest(m.version, s.last), timestamp = now() from s " +
        "where s.expected > 0 and m.id = s.id and m.version = s.expected and not m.is_archived returning 1), " +
        $"created as (insert into {s}.mt_streams (id, type, version, timestamp, tenant_id) " +
        "select s.id, null, s.last, now(), ?::varchar from s where s.expected = 0 returning 1), " +
        $"appended as (insert into {s}.mt_events (seq_id, id, stream_id, version, data, bdata, type, tenant_id, timestamp, mt_dotnet_type, is_archived) " +
        $"select nextval('{s}.mt_events_sequence'), e.id, e.stream, e.version, '{{}}'::jsonb, e.bdata, ?::varchar, ?::varchar, (now() at time zone 'utc'), ?::varchar, false " +
        // The events in the arrays' order (a sorted subquery is not pulled up), so nextval follows it.
        "from (select * from unnest(?::varchar[], ?::bigint[], ?::uuid[], ?::bytea[]) with ordinality as e(stream, version, id, bdata, n) order by e.n) e " +
        "returning 1) " +
        "select (select count(*) from created), (select count(*) from moved), (select count(*) from appended)");

    public int Streams => _streams.Count;

    public Type DocumentType => typeof(JournalEntry);

    public Weasel.Core.OperationRole Role() => Weasel.Core.OperationRole.Events;

    public void ConfigureCommand(ICommandBuilder builder, Weasel.Storage.IStorageSession session)
    {
        // Planned once for any arrays (see ReadSide.DecisionRows.GenericPlans); for the rest of the
        // transaction, so the decision rows' insert after it needs no statement of its own.
        builder.Append(ReadSide.DecisionRows.GenericPlans);
        builder.StartNewCommand();
        var p = builder.AppendWithParameters(_sql, '?');
        Set(p[0], _streams.ToArray(), NpgsqlDbType.Array | NpgsqlDbType.Varchar);
        Set(p[1], _expected.ToArray(), NpgsqlDbType.Array | NpgsqlDbType.Bigint);
        Set(p[2], _last.ToArray(), NpgsqlDbType.Array | NpgsqlDbType.Bigint);
        Set(p[3], _tenant, NpgsqlDbType.Varchar);
        Set(p[4], _eventType, NpgsqlDbType.Varchar);
        Set(p[5], _tenant, NpgsqlDbType.Varchar);
        Set(p[6], _dotnetType, NpgsqlDbType.Varchar);
        Set(p[7], _eventStream.ToArray(), NpgsqlDbType.Array | NpgsqlDbType.Varchar);
        Set(p[8], _eventVersion.ToArray(), NpgsqlDbType.Array | NpgsqlDbType.Bigint);
        Set(p[9], _eventId.ToArray(), NpgsqlDbType.Array | NpgsqlDbType.Uuid);
        Set(p[10], _eventData.ToArray(), NpgsqlDbType.Array | NpgsqlDbType.Bytea);
    }

    private static void Set(Npgsql.NpgsqlParameter p, object value, NpgsqlDbType type)
    {
        p.NpgsqlDbType = type;
        p.Value = value;
    }

    public async Task PostprocessAsync(System.Data.Common.DbDataReader reader, IList<Exception> exceptions, CancellationToken token)
    {
        if (!await reader.ReadAsync(token).ConfigureAwait(false))
        {
            exceptions.Add(new InvalidOperationException("the journal's append returned no row"));
            return;
        }
        var created = reader.GetInt64(0);
        var moved = reader.GetInt64(1);
        var appended = reader.GetInt64(2);
        var expectedNew = _expected.Count(e => e == 0);
        if (created != expectedNew || moved != _streams.Count - expectedNew || appended != _eventId.Count)
            exceptions.Add(new JournalConflictException(
                $"{_streams.Count - expectedNew - moved} of {_streams.Count - expectedNew} streams of the commit were not at their expected version (or are archived): " +
                string.Join(", ", _streams.Take(5)) + (_streams.Count > 5 ? ", …" : "")));
    }
}

/// <summary>A commit's stream was not at the version its writer expected: another writer got there
/// first. The commit is rolled back; the writer's call fails.</summary>
public sealed class JournalConflictException(string message) : Exception(message);
