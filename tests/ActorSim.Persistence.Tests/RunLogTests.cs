using ActorSim.Persistence.Journal;
using ActorSim.Persistence.EventLog;
using ActorSim.Persistence.Serialization;
using Akka.Actor;
using Akka.Persistence;

namespace ActorSim.Persistence.Tests;

/// <summary>A run read back from the database: only its own streams' domain events, in global order
/// (numbered from 1), with other runs' events before, between and after them.</summary>
public sealed class RunLogTests(SchemaFixture schema) : Akka.TestKit.Xunit2.TestKit(PostgresSchema.AkkaConfig(schema.Name)), IClassFixture<SchemaFixture>
{
    private void Write(string pid, long seq, object payload)
    {
        var journal = Akka.Persistence.Persistence.Instance.Apply(Sys).JournalFor(null);
        journal.Tell(new WriteMessages([new AtomicWrite(new Persistent(payload, seq, pid, "", false, ActorRefs.NoSender, "w"))], TestActor, 1));
        ExpectMsg<WriteMessagesSuccessful>(TimeSpan.FromSeconds(20));
        ExpectMsg<WriteMessageSuccess>();
    }

    [Fact]
    public async Task A_run_reads_back_its_own_domain_events_in_global_order()
    {
        var e = EventSerializationTests.SampleEvents();
        Write("other/kvm-vm1", 1, e[0]);
        Write("rl/kvm-vm1", 1, e[1]);
        Write("rl2/kvm-vm1", 1, e[2]); // a run whose name starts like this one's
        Write("rl/mm", 1, e[3]);
        Write("rl/notes", 1, "not a domain event"); // an Akka-serialized payload: not part of the run's log
        Write("other/kvm-vm1", 2, e[4]);
        Write("rl/kvm-vm1", 2, e[^1]);
        Write("other/kvm-vm1", 3, e[5]);

        var store = MartenStores.Get(PostgresSchema.ConnectionString, schema.Name);
        var events = new List<RunEvent>();
        await foreach (var ev in RunLog.ReadAsync(store, "rl")) events.Add(ev);
        Assert.Equal([(1L, "kvm-vm1", 1L), (2L, "mm", 1L), (3L, "kvm-vm1", 2L)], events.Select(x => (x.Seq, x.Stream, x.Version)));
        Assert.Equal(new[] { e[1], e[3], e[^1] }.Select(x => DomainEventSerializer.ToJson(x).GetRawText()), events.Select(x => DomainEventSerializer.ToJson(x.Event).GetRawText()));
        Assert.All(events, x => Assert.True(x.TimestampTicks > 0));

        var none = new List<RunEvent>();
        await foreach (var ev in RunLog.ReadAsync(store, "no-such-run")) none.Add(ev);
        Assert.Empty(none);
    }

    private static List<RunEvent> SampleRun(int count)
    {
        var sample = EventSerializationTests.SampleEvents();
        return [.. Enumerable.Range(0, count).Select(i => new RunEvent(i + 1, "s" + (i % 3), i / 3 + 1, sample[i % sample.Count], 638_000_000_000_000_000L + i))];
    }

    private static string[] Json(IEnumerable<RunEvent> events) =>
        [.. events.Select(x => $"{x.Seq} {x.Stream} {x.Version} {x.TimestampTicks} {DomainEventSerializer.ToJson(x.Event).GetRawText()}")];

    /// <summary>The import's writer: chunks smaller than the run (each stream continued across them), one
    /// transaction; the run reads back as the whole list would have written it.</summary>
    [Fact]
    public async Task A_run_written_a_chunk_at_a_time_reads_back_whole_and_in_order()
    {
        var store = MartenStores.Get(PostgresSchema.ConnectionString, schema.Name);
        var events = SampleRun(50);
        Assert.Equal(50, await RunLog.WriteAsync(store, new Persistence.ReadSide.RunInfo { Id = "chunked", Kernel = "6.9" }, events, chunk: 7));
        var back = new List<RunEvent>();
        await foreach (var ev in RunLog.ReadAsync(store, "chunked")) back.Add(ev);
        Assert.Equal(Json(events), Json(back));
        Assert.Equal("6.9", (await RunLog.InfoAsync(store, "chunked"))?.Kernel);
    }

    /// <summary>A file that stops reading part-way (the enumeration throws after chunks were written):
    /// nothing of the run is left, not even its record.</summary>
    [Fact]
    public async Task A_run_whose_events_stop_part_way_leaves_nothing()
    {
        var store = MartenStores.Get(PostgresSchema.ConnectionString, schema.Name);
        IEnumerable<RunEvent> Failing()
        {
            foreach (var e in SampleRun(30)) yield return e;
            throw new EventLogFormatException("f.jsonl", 32, "line", "truncated");
        }
        await Assert.ThrowsAsync<EventLogFormatException>(() => RunLog.WriteAsync(store, new Persistence.ReadSide.RunInfo { Id = "broken", Kernel = "6.9" }, Failing(), chunk: 7));
        Assert.False(await RunLog.RunExistsAsync(store, "broken"));
        Assert.Null(await RunLog.InfoAsync(store, "broken"));
    }

    /// <summary>A run exists when its record does or any stream of it (a run killed before its record
    /// was written, an import); a run whose name merely starts like it does not count.</summary>
    [Fact]
    public async Task A_run_exists_by_its_record_or_by_a_stream_of_its_own()
    {
        Write("ex/kvm-vm1", 1, EventSerializationTests.SampleEvents()[0]);
        var store = MartenStores.Get(PostgresSchema.ConnectionString, schema.Name);
        Assert.True(await RunLog.RunExistsAsync(store, "ex"));
        Assert.False(await RunLog.RunExistsAsync(store, "e"));
        Assert.False(await RunLog.RunExistsAsync(store, "ex/kvm"));
        Assert.False(await RunLog.RunExistsAsync(store, "ex_")); // LIKE's wildcard is no wildcard here
        await using (var session = store.LightweightSession())
        {
            session.Store(new Persistence.ReadSide.RunInfo { Id = "record-only", Kernel = "6.9" });
            await session.SaveChangesAsync();
        }
        Assert.True(await RunLog.RunExistsAsync(store, "record-only"));
    }

    /// <summary>The journal stamps each entry with the actor system's scheduler's Now — the simulation's
    /// time: here deterministic mode's virtual clock, moved a day on from the epoch, so the stamp cannot
    /// be the time PostgreSQL stored the row.</summary>
    [Fact]
    public async Task The_journal_stamps_each_entry_with_the_schedulers_time()
    {
        var config = Akka.Configuration.ConfigurationFactory.ParseString("akka.scheduler.implementation = \"ActorSim.Actors.VirtualClockScheduler, ActorSim.Actors\"")
            .WithFallback(PostgresSchema.AkkaConfig(schema.Name));
        using var system = ActorSystem.Create("stamp", config);
        Actors.SimClock.Advance(system, TimeSpan.FromDays(1));
        var probe = CreateTestProbe(system);
        Akka.Persistence.Persistence.Instance.Apply(system).JournalFor(null).Tell(new WriteMessages(
            [new AtomicWrite(new Persistent(EventSerializationTests.SampleEvents()[0], 1, "stamp/kvm-vm1", "", false, ActorRefs.NoSender, "w"))], probe.Ref, 1));
        probe.ExpectMsg<WriteMessagesSuccessful>(TimeSpan.FromSeconds(20));
        probe.ExpectMsg<WriteMessageSuccess>();
        await system.Terminate();
        var events = new List<RunEvent>();
        await foreach (var ev in RunLog.ReadAsync(MartenStores.Get(PostgresSchema.ConnectionString, schema.Name), "stamp")) events.Add(ev);
        Assert.Equal((DateTimeOffset.UnixEpoch + TimeSpan.FromDays(1)).UtcTicks, Assert.Single(events).TimestampTicks);
    }

    [Fact]
    public async Task An_imported_run_reads_back_in_the_order_of_its_file_across_pages_of_each_stream()
    {
        // Three streams interleaved irregularly, more events in two of them than one page holds: the
        // import writes them stream by stream, the read merges them back into the file's order.
        var order = new List<string>();
        var rng = new Random(7);
        for (var i = 0; i < 5200; i++) order.Add(rng.Next(10) switch { < 5 => "kvm-vm1", < 9 => "kvm-vm2", _ => "mm-vmm" });
        var versions = new Dictionary<string, long>();
        var events = order.Select((stream, i) =>
        {
            var v = versions[stream] = versions.GetValueOrDefault(stream) + 1;
            return new RunEvent(i + 1, stream, v, new Domain.Kvm.MmuInvalidateBegan(stream, (ulong)i << 12, ((ulong)i + 1) << 12), 1000 + i);
        }).ToList();
        Assert.True(versions["kvm-vm1"] > 2000 && versions["kvm-vm2"] > 2000);
        var store = MartenStores.Get(PostgresSchema.ConnectionString, schema.Name);
        await RunLog.WriteAsync(store, new Persistence.ReadSide.RunInfo { Id = "imp", Kernel = "6.9" }, events);
        Write("imp2/kvm-vm1", 1, EventSerializationTests.SampleEvents()[0]); // a run whose name starts like this one's

        var read = new List<RunEvent>();
        await foreach (var e in RunLog.ReadAsync(store, "imp")) read.Add(e);
        Assert.Equal(events.Select(e => (e.Seq, e.Stream, e.Version, e.TimestampTicks)), read.Select(e => (e.Seq, e.Stream, e.Version, e.TimestampTicks)));
        Assert.Equal(events.Select(e => e.Event), read.Select(e => e.Event));
    }

    [Fact]
    public async Task An_imported_run_read_in_part_then_whole_reads_back_whole_each_time()
    {
        // One stream of several pages: the reader reads a stream's next page ahead while the caller
        // replays; stopping early, while that page may still be coming, must leave the connection it
        // goes back to the pool with usable, and a read after it whole.
        var events = Enumerable.Range(1, 7000).Select(i =>
            new RunEvent(i, "kvm-vm1", i, new Domain.Kvm.MmuInvalidateBegan("vm1", (ulong)i << 12, ((ulong)i + 1) << 12), 1000 + i)).ToList();
        var store = MartenStores.Get(PostgresSchema.ConnectionString, schema.Name);
        await RunLog.WriteAsync(store, new Persistence.ReadSide.RunInfo { Id = "imp4", Kernel = "6.9" }, events);
        foreach (var stopAt in new[] { 1501, 1502, 3600, 5555 })
        {
            var part = new List<RunEvent>();
            await foreach (var e in RunLog.ReadAsync(store, "imp4"))
            {
                part.Add(e);
                if (part.Count == stopAt) break;
            }
            Assert.Equal(events.Take(stopAt).Select(e => (e.Seq, e.Version)), part.Select(e => (e.Seq, e.Version)));
            var whole = new List<RunEvent>();
            await foreach (var e in RunLog.ReadAsync(store, "imp4")) whole.Add(e);
            Assert.Equal(events.Select(e => (e.Seq, e.Version, e.TimestampTicks)), whole.Select(e => (e.Seq, e.Version, e.TimestampTicks)));
            Assert.Equal(events.Select(e => e.Event), whole.Select(e => e.Event));
        }
    }

    [Fact]
    public async Task A_page_of_an_imported_stream_with_nothing_to_replay_does_not_end_the_stream()
    {
        var store = MartenStores.Get(PostgresSchema.ConnectionString, schema.Name);
        JournalEntry Imported(long logSeq) => new()
        {
            Type = "mmu_invalidate_began", SchemaVersion = DomainEventSerializer.VersionOf("mmu_invalidate_began"),
            Data = new EventData(DomainEventSerializer.ToUtf8(new Domain.Kvm.MmuInvalidateBegan("vm1", (ulong)logSeq << 12, ((ulong)logSeq + 1) << 12))),
            Timestamp = 1000 + logSeq, WriterGuid = "import", LogSeq = logSeq,
        };
        await using (var session = store.LightweightSession())
        {
            session.Events.Append("imp3/mm-vmm", Imported(1));
            await session.SaveChangesAsync();
        }
        await using (var session = store.LightweightSession())
        {
            // More placeholders than a page holds, then events to replay.
            session.Events.Append("imp3/kvm-vm1", [.. Enumerable.Range(0, 2100).Select(_ => (object)new JournalEntry { Rejected = true }), Imported(2), Imported(3)]);
            await session.SaveChangesAsync();
        }
        var read = new List<RunEvent>();
        await foreach (var e in RunLog.ReadAsync(store, "imp3")) read.Add(e);
        Assert.Equal([(1L, "mm-vmm", 1L), (2L, "kvm-vm1", 2101L), (3L, "kvm-vm1", 2102L)], read.Select(e => (e.Seq, e.Stream, e.Version)));
    }
}
