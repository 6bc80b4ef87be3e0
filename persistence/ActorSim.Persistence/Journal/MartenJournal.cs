using System.Collections.Immutable;
using System.Diagnostics;
using System.Threading.Channels;
using Akka.Actor;
using Akka.Configuration;
using Akka.Event;
using Akka.Persistence;
using Akka.Persistence.Journal;
using Marten;

namespace ActorSim.Persistence.Journal;

/// <summary>Asks the Marten journal (through <c>Persistence.JournalFor</c>) for <see cref="JournalStats"/>.</summary>
public sealed record GetJournalStats
{
    public static readonly GetJournalStats Instance = new();
}

/// <summary>What the journal's single writer has done: commits, the Akka write calls and events they
/// carried, the time spent in commits, and the time from the first commit's start to the last one's end
/// (<see cref="Busy"/> near 1 means the writer, one commit at a time, is what limits throughput).</summary>
public sealed record JournalStats(long Commits, long Calls, long Events, TimeSpan InCommits, TimeSpan Span)
{
    /// <summary>Whether the writer's session skips PostgreSQL's per-event check of mt_events' foreign key
    /// (<see cref="MartenJournal.SkipForeignKeyChecks"/>); null until its connection is open.</summary>
    public bool? SkipsForeignKeyChecks { get; init; }

    public double EventsPerCommit => Commits == 0 ? 0 : (double)Events / Commits;
    public TimeSpan MeanCommit => Commits == 0 ? TimeSpan.Zero : InCommits / Commits;
    public double Busy => Span <= TimeSpan.Zero ? 0 : InCommits / Span;
}

/// <summary>Published when the journal starts riding out a database outage.</summary>
public sealed record JournalOutage(string Error);
/// <summary>Published when writes go through again after an outage.</summary>
public sealed record JournalAvailable;
/// <summary>Published when an outage lasted past the journal's outage-limit: writes now fail.</summary>
public sealed record JournalUnavailable(TimeSpan After, string Error);

/// <summary>An Akka.Persistence journal on Marten (PostgreSQL): one string-keyed Marten event stream
/// per persistenceId, stream version = sequence number, in Marten's event tables.
/// <para><b>Writes.</b> Each <c>WriteMessagesAsync</c> call (one persistent actor's batch of
/// AtomicWrites) is serialized first: an AtomicWrite whose payload cannot be serialized is
/// <i>rejected</i> (its slot in the result list holds the exception) and the others go on. The
/// accepted writes of many calls — of many actors — are merged into one commit (one database round
/// trip, one statement appending every stream of it, <see cref="JournalAppend"/>), up to
/// <c>max-events-per-commit</c> events, each stream from its expected version, so each AtomicWrite is
/// all-or-nothing and a stale writer fails.
/// If a merged commit fails, each call of it is retried alone, so one conflicting writer does not
/// fail the others. A call whose commit fails (a concurrent writer on its persistenceId, a lost
/// connection) <i>fails</i>: its task faults and the actor stops, as Akka expects for write
/// failures.</para>
/// <para><b>One writer, on purpose.</b> Calls commit in the order they were queued, across streams:
/// the mm actor answers the KVM actor before its own entry commits (pipelined persistence), so a VM's
/// decision entry must never get a lower global sequence number than the mm entry whose PTEs it used.
/// Several writers committing at once (a stream's calls kept on one writer) were measured twice,
/// side by side: +8–15 % at 4 VMs x 64 vCPUs, −10–20 % at 2 x 8 on this 2-core machine; they give up
/// that order, so they were not kept (docs/BENCHMARKS.md).</para>
/// <para><b>No per-event foreign-key check</b> where the database lets the writer's session skip it
/// (<see cref="SkipForeignKeyChecks"/>): the append makes every stream of the commit itself.</para>
/// <para><b>Deterministic mode</b> (<see cref="InTurn"/>): each call is committed alone inside the
/// journal actor's turn, and replays and deletes too, so the answers leave from that turn.</para>
/// <para><b>Deletes</b> record the deleted-to sequence number per persistenceId; events stay, so the
/// highest sequence number never goes down; replay skips deleted ones.</para></summary>
public sealed class MartenJournal : AsyncWriteJournal
{
    private readonly DocumentStore _store;
    private readonly PayloadCodec _codec;
    private readonly Channel<PendingCall> _queue = Channel.CreateUnbounded<PendingCall>(new UnboundedChannelOptions { SingleReader = true });
    private readonly Task _writer;
    private readonly int _maxEventsPerCommit;
    private readonly TimeSpan _outageLimit;
    private readonly Outages.Watcher _outages;
    private readonly ILoggingAdapter _log;
    private readonly bool _inTurn;

    private sealed record StreamAppend(string PersistenceId, long LastSequenceNr, List<JournalEntry> Entries);

    private sealed class PendingCall(List<StreamAppend> appends, Exception?[] results)
    {
        public List<StreamAppend> Appends { get; } = appends;
        public Exception?[] Results { get; } = results;
        public int EventCount { get; } = appends.Sum(a => a.Entries.Count);
        public TaskCompletionSource<IImmutableList<Exception?>> Done { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }

    public MartenJournal(Config config)
    {
        _store = MartenStores.FromConfig(config);
        _maxEventsPerCommit = Math.Max(1, config.GetInt("max-events-per-commit", 1000));
        _outageLimit = config.GetTimeSpan("outage-limit", Outages.DefaultLimit);
        _outages = Outages.Publishing(Context.System.EventStream);
        _log = Context.GetLogger();
        _codec = new PayloadCodec(Context.System.Serialization);
        _inTurn = InTurn.Enabled(Context.System);
        _writer = Task.Run(WriteLoop);
    }

    protected override Task<IImmutableList<Exception?>> WriteMessagesAsync(IEnumerable<AtomicWrite> messages, CancellationToken cancellationToken)
    {
        var writes = messages.ToArray();
        var results = new Exception?[writes.Length];
        var appends = new List<StreamAppend>();
        // Every entry is stamped with the time of the call (Akka leaves the representation's timestamp 0):
        // the scheduler's Now, which is the simulation's clock (ActorSim.Actors.SimClock: virtual in
        // deterministic mode), as Akka.Persistence.Sql stamps its rows with its timestamp provider's.
        var now = Context.System.Scheduler.Now.UtcTicks;
        for (var i = 0; i < writes.Length; i++)
        {
            try
            {
                var reprs = (IImmutableList<IPersistentRepresentation>)writes[i].Payload;
                var entries = new List<JournalEntry>(reprs.Count);
                foreach (var p in reprs) entries.Add(ToEntry(p, now));
                appends.Add(new StreamAppend(writes[i].PersistenceId, writes[i].HighestSequenceNr, entries));
            }
            catch (Exception e)
            {
                // Rejected: the payload is not written and the actor goes on. Its sequence numbers
                // are taken by placeholders so that stream version = sequence number holds.
                results[i] = e;
                appends.Add(new StreamAppend(writes[i].PersistenceId, writes[i].HighestSequenceNr,
                    Enumerable.Range(0, (int)(writes[i].HighestSequenceNr - writes[i].LowestSequenceNr + 1))
                        .Select(_ => new JournalEntry { Rejected = true }).ToList()));
            }
        }
        var call = new PendingCall(appends, results);
        if (_inTurn) return InTurn.Finish(true, CommitAlone(call));
        if (!_queue.Writer.TryWrite(call)) throw new InvalidOperationException("journal is stopping");
        return call.Done.Task;
    }

    /// <summary>Deterministic mode's write: the call committed by itself, outside the writer loop.</summary>
    private async Task<IImmutableList<Exception?>> CommitAlone(PendingCall call)
    {
        var started = Stopwatch.GetTimestamp();
        await CommitRidingOutOutages([call]).ConfigureAwait(false);
        _stats.Add(1, call.EventCount, started, Stopwatch.GetTimestamp());
        return call.Results.ToImmutableList();
    }

    private JournalEntry ToEntry(IPersistentRepresentation p, long now)
    {
        var payload = p.Payload;
        var tags = Array.Empty<string>();
        if (payload is Tagged t)
        {
            tags = [.. t.Tags];
            payload = t.Payload;
        }
        _codec.Encode(payload, out var type, out var version, out var data, out var serializerId, out var manifest, out var bytes);
        return new JournalEntry
        {
            Type = type, SchemaVersion = version, Data = data, SerializerId = serializerId, Manifest = manifest, Bytes = bytes,
            Tags = tags, WriterGuid = p.WriterGuid ?? "", Timestamp = now, Decoded = payload as ActorSim.Domain.IDomainEvent,
        };
    }

    private async Task WriteLoop()
    {
        var reader = _queue.Reader;
        while (await reader.WaitToReadAsync().ConfigureAwait(false))
        {
            var batch = new List<PendingCall>();
            var events = 0;
            while (events < _maxEventsPerCommit && reader.TryRead(out var call))
            {
                batch.Add(call);
                events += call.EventCount;
            }
            try
            {
                var started = Stopwatch.GetTimestamp();
                await CommitRidingOutOutages(batch).ConfigureAwait(false);
                _stats.Add(batch.Count, events, started, Stopwatch.GetTimestamp());
                foreach (var c in batch) c.Done.TrySetResult(c.Results.ToImmutableList());
            }
            catch (Exception) when (batch.Count > 1)
            {
                foreach (var c in batch)
                {
                    try
                    {
                        var started = Stopwatch.GetTimestamp();
                        await Commit([c]).ConfigureAwait(false);
                        _stats.Add(1, c.EventCount, started, Stopwatch.GetTimestamp());
                        c.Done.TrySetResult(c.Results.ToImmutableList());
                    }
                    catch (Exception e)
                    {
                        c.Done.TrySetException(e);
                    }
                }
            }
            catch (Exception e)
            {
                batch[0].Done.TrySetException(e);
            }
        }
    }

    /// <summary>Commits, riding out an outage for up to <c>outage-limit</c> (<see cref="Outages"/>): the
    /// calls of the batch — and, behind them, the actors and vCPUs waiting for their acks — wait meanwhile:
    /// back-pressure, not buffering without end. Past the limit the batch fails.</summary>
    private Task CommitRidingOutOutages(List<PendingCall> batch) =>
        Outages.RideOut(async () =>
        {
            await Commit(batch).ConfigureAwait(false);
            return true;
        }, _outageLimit, _outages);

    /// <summary>One statement appending every stream of the batch (merging every AtomicWrite of a
    /// stream, in order; <see cref="JournalAppend"/>) and inserting the read side's rows of the same
    /// events, in one round trip on the writer's own connection (<see cref="SendAsync"/>); a commit that
    /// also stores documents (violation rows) goes through a Marten session instead.</summary>
    private async Task Commit(List<PendingCall> calls)
    {
        var byStream = new Dictionary<string, (long Last, List<JournalEntry> Entries)>(StringComparer.Ordinal);
        var order = new List<string>();
        foreach (var a in calls.SelectMany(c => c.Appends))
        {
            if (!byStream.TryGetValue(a.PersistenceId, out var s))
            {
                s = (0, []);
                order.Add(a.PersistenceId);
            }
            s.Entries.AddRange(a.Entries);
            byStream[a.PersistenceId] = (a.LastSequenceNr, s.Entries);
        }
        var append = new JournalAppend(_store, JasperFx.StorageConstants.DefaultTenantId);
        var readSide = new ReadSide.DecisionProjection.Commit();
        foreach (var pid in order)
        {
            var (last, entries) = byStream[pid];
            var expected = last - entries.Count;
            append.AddStream(pid, expected, entries);
            for (var i = 0; i < entries.Count; i++) readSide.Add(pid, expected + 1 + i, entries[i]);
        }
        try
        {
            if (readSide.HasDocuments)
            {
                await using var session = _store.LightweightSession();
                session.QueueOperation(append);
                readSide.Queue(session, genericPlans: false);
                await session.SaveChangesAsync().ConfigureAwait(false);
            }
            else await SendOnWriterConnectionAsync(append, append.StatementWith(readSide.RowBatch, _store.Options.DatabaseSchemaName)).ConfigureAwait(false);
        }
        catch (Exception e) when (JournalAppend.IsConflict(e))
        {
            throw new JournalConflictException($"a stream of the commit ({string.Join(", ", order.Take(3))}{(order.Count > 3 ? ", …" : "")}) is not at its writer's expected version", e);
        }
    }

    /// <summary>The single writer's own connection, opened on first use and after a failure, with
    /// generic plans for the session: the journal's statements (with rows and without) are prepared
    /// once (Npgsql's automatic preparation, <see cref="MartenStores.WithStoreSettings"/>) and planned once for any arrays
    /// (<see cref="ReadSide.DecisionRows.GenericPlans"/>). Nothing else runs on it.
    /// <para>A Marten session per commit cost a second round trip (its explicit transaction's
    /// <c>COMMIT</c>) and Marten's unit of work; a batch sent without a transaction is one implicit
    /// transaction in PostgreSQL, all or nothing, committed at its end. Measured side by side in
    /// the bench (--only durable,journal, two alternations): mean commit 1.01 / 1.08 → 0.85 / 0.79 ms at
    /// 2 VMs x 8 vCPUs, durable 8.3 / 7.1 k → 9.3 / 10.5 k decisions/s, Persist from 100 actors 11.8 /
    /// 8.2 k → 13.9 / 15.6 k events/s.</para></summary>
    private Npgsql.NpgsqlConnection? _connection;

    /// <summary>The writer connection's settings: generic plans (above), and no sequential scans where
    /// an index serves. The second is for the foreign key Marten declares from mt_events to mt_streams:
    /// PostgreSQL checks it for every event appended with a query of its own (<c>SELECT 1 FROM ONLY
    /// mt_streams x WHERE id = $1 FOR KEY SHARE OF x</c>), planned per session and again after each
    /// ANALYZE of mt_streams — analyzed while the table holds a few streams in a page, as a sequential
    /// scan, kept while the table's pages fill with the versions every commit's update of its streams
    /// leaves. In a journal-alone PersistAll bench that check was about a third of PostgreSQL's time
    /// (perf), most of it reading mt_streams' pages (<c>heapgetpage</c>, <c>heap_getnextslot</c>); by the
    /// key, a fifth. The journal's own statements read mt_streams by its key either way (a test checks
    /// their plans).</summary>
    internal const string WriterSessionSettings = "set plan_cache_mode = force_generic_plan; set enable_seqscan = off";

    /// <summary>Tried on the writer's session after <see cref="WriterSessionSettings"/>: in the replica
    /// role PostgreSQL fires no trigger left at its default, and the check of mt_events' foreign key to
    /// mt_streams is such a trigger (ri_triggers.c, <c>RI_FKey_check_ins</c>), run once per event
    /// appended: a query of its own through SPI, planned and started per row. In a journal-alone
    /// PersistAll it was a quarter of the writer backend's time (perf: <c>AfterTriggerEndQuery</c> →
    /// <c>SPI_execute_snapshot</c> 25 %). The check has nothing to find here: the append's own statement
    /// moves or creates every stream of the commit, and fails if it cannot (<see cref="JournalAppend"/>),
    /// holding each stream's row locked until it commits, so no delete of a stream can come between.
    /// Every other connection — a Marten session, the documents path of <see cref="Commit"/>, a user's
    /// psql — keeps the check. Setting the role needs the right to (<c>GRANT SET ON PARAMETER
    /// session_replication_role</c>, PostgreSQL 15; <c>scripts/pg.sh</c> grants it, a superuser has
    /// it); refused, the writer goes on with the check (<see cref="TrySetAsync"/>) and says so once.</summary>
    internal const string SkipForeignKeyChecks = "set session_replication_role = replica";

    /// <summary>A writer session on <paramref name="conn"/>: <see cref="WriterSessionSettings"/>, then
    /// <see cref="SkipForeignKeyChecks"/> if the role may; returns whether it may.</summary>
    internal static async Task<bool> ConfigureWriterSessionAsync(Npgsql.NpgsqlConnection conn)
    {
        await using (var settings = new Npgsql.NpgsqlCommand(WriterSessionSettings, conn)) await settings.ExecuteNonQueryAsync().ConfigureAwait(false);
        return await TrySetAsync(conn, SkipForeignKeyChecks).ConfigureAwait(false);
    }

    /// <summary>Runs <paramref name="set"/>; false if the role may not (insufficient privilege), and
    /// the connection, outside any transaction, goes on as before.</summary>
    internal static async Task<bool> TrySetAsync(Npgsql.NpgsqlConnection conn, string set)
    {
        try
        {
            await using var command = new Npgsql.NpgsqlCommand(set, conn);
            await command.ExecuteNonQueryAsync().ConfigureAwait(false);
            return true;
        }
        catch (Npgsql.PostgresException e) when (e.SqlState == Npgsql.PostgresErrorCodes.InsufficientPrivilege)
        {
            return false;
        }
    }

    // 0 until the writer's first connection is open, then 1 if it skips the checks, 2 if not (written
    // by the writer, read by the journal's actor).
    private int _foreignKeyChecks;

    private async Task SendOnWriterConnectionAsync(JournalAppend append, TypedStatement statement)
    {
        if (_connection is null)
        {
            var conn = (Npgsql.NpgsqlConnection)_store.Storage.Database.CreateConnection();
            try
            {
                await conn.OpenAsync().ConfigureAwait(false);
                var skips = await ConfigureWriterSessionAsync(conn).ConfigureAwait(false);
                if (!skips && Volatile.Read(ref _foreignKeyChecks) == 0)
                    _log.Info("Marten journal: PostgreSQL checks mt_events' foreign key for every event appended; the database role may not set session_replication_role (scripts/pg.sh grants it)");
                Volatile.Write(ref _foreignKeyChecks, skips ? 1 : 2);
            }
            catch
            {
                await conn.DisposeAsync().ConfigureAwait(false);
                throw;
            }
            _connection = conn;
        }
        try
        {
            await SendAsync(_connection, append, statement).ConfigureAwait(false);
        }
        catch (Exception) when (_connection.State != System.Data.ConnectionState.Open)
        {
            // Broken (a lost connection, a restart): the next commit opens another.
            await _connection.DisposeAsync().ConfigureAwait(false);
            _connection = null;
            throw;
        }
    }

    /// <summary><paramref name="append"/>'s statement — with the read side's rows, <see cref="JournalAppend.StatementWith"/> —
    /// on <paramref name="connection"/>, outside any transaction: PostgreSQL runs it as one implicit
    /// transaction, so a failing part (a row the table refuses, a conflict) leaves nothing of the commit.</summary>
    internal static async Task SendAsync(Npgsql.NpgsqlConnection connection, JournalAppend append, TypedStatement statement)
    {
        await using var batch = new Npgsql.NpgsqlBatch(connection);
        batch.BatchCommands.Add(statement.ToBatchCommand());
        await using var reader = await batch.ExecuteReaderAsync().ConfigureAwait(false);
        await append.ReadResultAsync(reader, CancellationToken.None).ConfigureAwait(false);
    }

    public override Task ReplayMessagesAsync(IActorContext context, string persistenceId, long fromSequenceNr, long toSequenceNr, long max,
        Action<IPersistentRepresentation> recoveryCallback) =>
        InTurn.Finish(_inTurn, Replay(persistenceId, fromSequenceNr, toSequenceNr, max, recoveryCallback));

    /// <summary>The stream's events from the first not deleted, read whole before any is handed to Akka —
    /// so a read that fails in an outage is tried again (<see cref="Outages"/>) without handing any twice:
    /// a recovery rides out an outage as a write does, and fails only past <c>outage-limit</c> (it
    /// failed at once, and the actor stopped with nothing to tell <c>run</c> but its asks' timeout).</summary>
    private async Task Replay(string persistenceId, long fromSequenceNr, long toSequenceNr, long max, Action<IPersistentRepresentation> recoveryCallback)
    {
        if (max <= 0 || toSequenceNr < fromSequenceNr) return;
        var (from, events) = await Outages.RideOut(async () =>
        {
            await using var session = _store.QuerySession();
            var deletedTo = (await session.LoadAsync<JournalMetadata>(persistenceId).ConfigureAwait(false))?.DeletedTo ?? 0;
            var from = Math.Max(fromSequenceNr, deletedTo + 1);
            if (from > toSequenceNr) return (from, (IReadOnlyList<JasperFx.Events.IEvent>)[]);
            return (from, await session.Events.FetchStreamAsync(persistenceId, version: toSequenceNr == long.MaxValue ? 0 : toSequenceNr, fromVersion: from).ConfigureAwait(false));
        }, _outageLimit, _outages).ConfigureAwait(false);
        long n = 0;
        foreach (var e in events)
        {
            if (e.Version < from || e.Version > toSequenceNr) continue;
            var entry = (JournalEntry)e.Data;
            if (entry.Rejected) continue;
            if (n++ >= max) break;
            var payload = _codec.Decode(entry.Type, entry.SchemaVersion, entry.Data, entry.SerializerId, entry.Manifest, entry.Bytes);
            recoveryCallback(new Persistent(payload, e.Version, persistenceId, entry.Manifest ?? entry.Type ?? "", false, ActorRefs.NoSender, entry.WriterGuid, entry.Timestamp));
        }
    }

    public override Task<long> ReadHighestSequenceNrAsync(string persistenceId, long fromSequenceNr, CancellationToken cancellationToken) =>
        InTurn.Finish(_inTurn, Outages.RideOut(() => ReadHighest(persistenceId), _outageLimit, _outages));

    private async Task<long> ReadHighest(string persistenceId)
    {
        await using var session = _store.QuerySession();
        var state = await session.Events.FetchStreamStateAsync(persistenceId).ConfigureAwait(false);
        return state?.Version ?? 0;
    }

    protected override Task DeleteMessagesToAsync(string persistenceId, long toSequenceNr, CancellationToken cancellationToken) =>
        InTurn.Finish(_inTurn, DeleteTo(persistenceId, toSequenceNr));

    private async Task DeleteTo(string persistenceId, long toSequenceNr)
    {
        var highest = await ReadHighest(persistenceId).ConfigureAwait(false);
        await using var session = _store.LightweightSession();
        var meta = await session.LoadAsync<JournalMetadata>(persistenceId).ConfigureAwait(false) ?? new JournalMetadata { Id = persistenceId };
        meta.DeletedTo = Math.Max(meta.DeletedTo, Math.Min(toSequenceNr, highest));
        session.Store(meta);
        await session.SaveChangesAsync().ConfigureAwait(false);
    }

    /// <summary>Answers <see cref="GetJournalStats"/> with the writer's figures so far.</summary>
    protected override bool ReceivePluginInternal(object message)
    {
        if (message is not GetJournalStats) return false;
        Sender.Tell(_stats.Snapshot() with { SkipsForeignKeyChecks = Volatile.Read(ref _foreignKeyChecks) switch { 1 => true, 2 => false, _ => null } });
        return true;
    }

    private readonly CommitCounters _stats = new();

    /// <summary>Written by the writer loop, read by the journal actor: under a lock (once per commit).
    /// Counts the commits that succeeded, merged ones and the per-call retries after a failed merge.</summary>
    private sealed class CommitCounters
    {
        private readonly Lock _lock = new();
        private long _commits, _calls, _events, _ticks, _first, _last;

        public void Add(int calls, int events, long started, long ended)
        {
            lock (_lock)
            {
                _commits++;
                _calls += calls;
                _events += events;
                _ticks += ended - started;
                if (_first == 0) _first = started;
                _last = ended;
            }
        }

        public JournalStats Snapshot()
        {
            lock (_lock)
                return new JournalStats(_commits, _calls, _events, Stopwatch.GetElapsedTime(0, _ticks), Stopwatch.GetElapsedTime(_first, _last));
        }
    }

    protected override void PostStop()
    {
        _queue.Writer.TryComplete();
        _writer.Wait(TimeSpan.FromSeconds(30));
        _connection?.Dispose();
        base.PostStop();
    }
}
