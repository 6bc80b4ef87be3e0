using System.Text.Json;
using ActorSim.Domain.Kvm;
using ActorSim.Persistence.EventLog;
using ActorSim.Persistence.Journal;
using ActorSim.Persistence.ReadSide;
using ActorSim.Persistence.Serialization;
using Akka.Actor;
using Akka.Persistence;
using Akka.Persistence.Query;
using Akka.Streams;
using Akka.Streams.Dsl;
using ActorSim.Persistence.Query;
using Npgsql;

namespace ActorSim.Persistence.Tests;

/// <summary>A large domain event (a batch of decision records) is stored packed — zlib-compressed (a
/// base64 JSON string in the entry's <c>Data</c> when entries were JSON) — and every reader gives back
/// the same event: the journal's replay, the read journal, <see cref="RunLog"/>, and the projection.</summary>
public sealed class PackedEventTests(SchemaFixture schema) : Akka.TestKit.Xunit2.TestKit(PostgresSchema.AkkaConfig(schema.Name)), IClassFixture<SchemaFixture>
{
    /// <summary>A batch of 24 decisions (the sample batch's repeated, each a different page), well past
    /// <see cref="EventData.PackAbove"/>.</summary>
    public static Stage2FaultsResolved LargeBatch()
    {
        var sample = EventSerializationTests.SampleEvents().OfType<Stage2FaultsResolved>().Single().Decisions;
        return new Stage2FaultsResolved([.. Enumerable.Range(0, 24).Select(i =>
        {
            var d = sample[i % sample.Length];
            return d with { Inputs = d.Inputs with { Gpa = d.Inputs.Gpa + ((ulong)i << 12), Vcpu = i } };
        })]);
    }

    private static string Json(Domain.IDomainEvent e) => DomainEventSerializer.ToJson(e).GetRawText();

    [Fact]
    public void A_large_event_is_written_as_a_packed_string_and_read_back_whole_a_small_one_stays_an_object()
    {
        var large = DomainEventSerializer.ToUtf8(LargeBatch());
        var small = DomainEventSerializer.ToUtf8(EventSerializationTests.SampleEvents()[0]);
        Assert.True(large.Length > EventData.PackAbove && small.Length <= EventData.PackAbove, $"{large.Length} / {small.Length}");

        var packed = JsonSerializer.SerializeToUtf8Bytes(new JournalEntry { Type = "stage2_faults_resolved", Data = new EventData(large) });
        var stored = JsonDocument.Parse(packed).RootElement.GetProperty("Data");
        Assert.Equal(JsonValueKind.String, stored.ValueKind);
        Assert.True(stored.GetString()!.Length < large.Length / 4, $"{stored.GetString()!.Length} of {large.Length}");
        var back = JsonSerializer.Deserialize<JournalEntry>(packed)!.Data!;
        Assert.True(back.Packed);
        Assert.Equal(System.Text.Encoding.UTF8.GetString(large), back.Element.GetRawText());
        Assert.Equal(large, EventData.Utf8Of(System.Text.Encoding.UTF8.GetBytes(stored.GetRawText())));

        var plain = JsonSerializer.SerializeToUtf8Bytes(new JournalEntry { Type = "x", Data = new EventData(small) });
        Assert.Equal(JsonValueKind.Object, JsonDocument.Parse(plain).RootElement.GetProperty("Data").ValueKind);
        Assert.False(JsonSerializer.Deserialize<JournalEntry>(plain)!.Data!.Packed);
        Assert.Equal(small, EventData.Utf8Of(small));
    }

    [Fact]
    public async Task A_packed_batch_reads_back_the_same_from_every_reader()
    {
        var batch = LargeBatch();
        var journal = Akka.Persistence.Persistence.Instance.Apply(Sys).JournalFor(null);
        journal.Tell(new WriteMessages([new AtomicWrite(new Persistent(batch, 1, "pk/kvm-vm1", "", false, ActorRefs.NoSender, "w"))], TestActor, 1));
        ExpectMsg<WriteMessagesSuccessful>(TimeSpan.FromSeconds(20));
        ExpectMsg<WriteMessageSuccess>();

        await using (var conn = new NpgsqlConnection(PostgresSchema.ConnectionString))
        {
            await conn.OpenAsync();
            // Stored binary (Marten's placeholder in data), its data packed.
            await using var cmd = new NpgsqlCommand($"select data::text, bdata from {schema.Name}.mt_events where stream_id = 'pk/kvm-vm1'", conn);
            await using var r = await cmd.ExecuteReaderAsync();
            Assert.True(await r.ReadAsync());
            Assert.Equal("{}", r.GetString(0));
            var bdata = r.GetFieldValue<byte[]>(1);
            Assert.True(bdata.Length < DomainEventSerializer.ToUtf8(batch).Length / 4, $"{bdata.Length}");
            Assert.True(JournalEntryBinary.Read(bdata).Data!.Packed);
        }

        // The journal's replay (actor recovery).
        journal.Tell(new ReplayMessages(1, long.MaxValue, long.MaxValue, "pk/kvm-vm1", TestActor));
        var replayed = ExpectMsg<ReplayedMessage>(TimeSpan.FromSeconds(20)).Persistent.Payload;
        ExpectMsg<RecoverySuccess>();
        Assert.Equal(Json(batch), Json((Domain.IDomainEvent)replayed));

        // The read journal (Akka.Persistence.Query).
        var query = PersistenceQuery.Get(Sys).ReadJournalFor<MartenReadJournal>(MartenReadJournal.Identifier);
        var envelopes = await query.CurrentEventsByPersistenceId("pk/kvm-vm1", 0, long.MaxValue).RunWith(Sink.Seq<EventEnvelope>(), Sys.Materializer());
        Assert.Equal([Json(batch)], envelopes.Select(e => Json((Domain.IDomainEvent)e.Event)));

        // The run's log (replay, export, explain) and the projection's rows.
        var store = MartenStores.Get(PostgresSchema.ConnectionString, schema.Name);
        var read = new List<RunEvent>();
        await foreach (var e in RunLog.ReadAsync(store, "pk")) read.Add(e);
        Assert.Equal([Json(batch)], read.Select(e => Json(e.Event)));
        await using var session = store.QuerySession();
        Assert.Equal(batch.Decisions.Select(d => (long)d.Inputs.Gpa), (await DecisionRows.ForRunAsync(session, "pk")).Select(r => r.Gpa));
    }
}

/// <summary>The binary form of a journal entry (<see cref="JournalEntryBinary"/>) keeps every field.</summary>
public class JournalEntryBinaryTests
{
    [Fact]
    public void Every_field_comes_back()
    {
        var small = DomainEventSerializer.ToUtf8(EventSerializationTests.SampleEvents()[0]);
        var large = DomainEventSerializer.ToUtf8(PackedEventTests.LargeBatch());
        var full = new JournalEntry
        {
            Type = "stage2_fault_resolved", SchemaVersion = 3, Data = new EventData(small), SerializerId = 7, Manifest = "m", Bytes = "AAE=",
            Tags = ["a", "b"], WriterGuid = "w-1", Timestamp = -5, Rejected = false, LogSeq = 42,
        };
        static string Show(JournalEntry e) =>
            $"{e.Type}|{e.SchemaVersion}|{(e.Data is null ? "-" : System.Text.Encoding.UTF8.GetString(e.Data.Utf8))}|{e.Data?.Packed}|{e.SerializerId}|{e.Manifest}|{e.Bytes}|" +
            $"{string.Join(",", e.Tags)}|{e.WriterGuid}|{e.Timestamp}|{e.Rejected}|{e.LogSeq}";
        Assert.Equal(Show(full), Show(JournalEntryBinary.Read(JournalEntryBinary.Write(full))));
        var akka = new JournalEntry { SerializerId = 9, Manifest = "", Bytes = "AQID", WriterGuid = "w", Timestamp = 1 };
        Assert.Equal(Show(akka), Show(JournalEntryBinary.Read(JournalEntryBinary.Write(akka))));
        var rejected = new JournalEntry { Rejected = true };
        Assert.Equal(Show(rejected), Show(JournalEntryBinary.Read(JournalEntryBinary.Write(rejected))));
        var lz4 = JournalEntryBinary.Write(new JournalEntry { Type = "stage2_faults_resolved", Data = new EventData(large) });
        var packed = JournalEntryBinary.Read(lz4);
        Assert.Equal(Packing.Lz4, packed.Data!.Packing);
        Assert.True(lz4.Length < large.Length / 4, $"{lz4.Length}");
        Assert.Equal(large, packed.Data.Utf8);
        // A binary entry packed with zlib (written before LZ4): its JSON entry's packed event, kept zlib.
        var fromJson = JsonSerializer.Deserialize<JournalEntry>(JsonSerializer.SerializeToUtf8Bytes(new JournalEntry { Type = "x", Data = new EventData(large) }))!;
        Assert.Equal(Packing.Zlib, fromJson.Data!.Packing);
        var zlib = JournalEntryBinary.Read(JournalEntryBinary.Write(fromJson));
        Assert.Equal(Packing.Zlib, zlib.Data!.Packing);
        Assert.Equal(large, zlib.Data.Utf8);
        Assert.Contains("more than one way", Assert.Throws<InvalidDataException>(() => JournalEntryBinary.Read([.. lz4[..1], (byte)(lz4[1] | 32), .. lz4[2..]])).Message);
        // Format 1 (before LZ4) has the same layout and still reads; LZ4 data in it is refused.
        Assert.Equal(2, lz4[0]);
        var format1 = JournalEntryBinary.Write(fromJson);
        format1[0] = 1;
        Assert.Equal(large, JournalEntryBinary.Read(format1).Data!.Utf8);
        Assert.Contains("format 1", Assert.Throws<InvalidDataException>(() => JournalEntryBinary.Read([1, .. lz4[1..]])).Message);
        Assert.Contains("unknown binary format 9", Assert.Throws<InvalidDataException>(() => JournalEntryBinary.Read([9, 0])).Message);
        var whole = JournalEntryBinary.Write(full);
        Assert.Contains("cut short", Assert.Throws<InvalidDataException>(() => JournalEntryBinary.Read(whole[..^5])).Message);
        Assert.Contains("after the binary record", Assert.Throws<InvalidDataException>(() => JournalEntryBinary.Read([.. whole, 0])).Message);
    }
}

/// <summary>Entries an earlier build stored as JSON (<c>bdata</c> null; a batch packed as a base64
/// string) still read back, before and after binary entries of the same stream: the journal's replay
/// and <see cref="RunLog"/>.</summary>
public sealed class JsonEntryCompatTests(SchemaFixture schema) : Akka.TestKit.Xunit2.TestKit(PostgresSchema.AkkaConfig(schema.Name)), IClassFixture<SchemaFixture>
{
    [Fact]
    public async Task Json_entries_of_an_earlier_build_read_back_next_to_binary_ones()
    {
        var single = EventSerializationTests.SampleEvents().OfType<Stage2FaultResolved>().First();
        var batch = PackedEventTests.LargeBatch();
        var store = MartenStores.Get(PostgresSchema.ConnectionString, schema.Name);
        await using (var conn = new NpgsqlConnection(PostgresSchema.ConnectionString))
        {
            await conn.OpenAsync();
            var s = schema.Name;
            await using var cmd = new NpgsqlCommand(
                $"insert into {s}.mt_streams (id, version, timestamp, tenant_id) values ('old/kvm-vm1', 2, now(), '*DEFAULT*'); " +
                $"insert into {s}.mt_events (seq_id, id, stream_id, version, data, type, mt_dotnet_type, tenant_id, timestamp) " +
                $"select nextval('{s}.mt_events_sequence'), gen_random_uuid(), 'old/kvm-vm1', v, d::jsonb, 'journal_entry', " +
                "'ActorSim.Persistence.Journal.JournalEntry, ActorSim.Persistence', '*DEFAULT*', now() from unnest(@v, @d) as x(v, d) order by v", conn);
            string Old(Domain.IDomainEvent e) => JsonSerializer.Serialize(new JournalEntry
            {
                Type = DomainEventSerializer.AliasOf(e.GetType()), SchemaVersion = DomainEventSerializer.VersionOf(DomainEventSerializer.AliasOf(e.GetType())),
                Data = new EventData(DomainEventSerializer.ToUtf8(e)), WriterGuid = "old", Timestamp = 1,
            });
            cmd.Parameters.AddWithValue("v", new long[] { 1, 2 });
            cmd.Parameters.AddWithValue("d", new[] { Old(single), Old(batch) });
            await cmd.ExecuteNonQueryAsync();
        }
        var journal = Akka.Persistence.Persistence.Instance.Apply(Sys).JournalFor(null);
        journal.Tell(new WriteMessages([new AtomicWrite(new Persistent(single, 3, "old/kvm-vm1", "", false, ActorRefs.NoSender, "new"))], TestActor, 1));
        ExpectMsg<WriteMessagesSuccessful>(TimeSpan.FromSeconds(20));
        ExpectMsg<WriteMessageSuccess>();

        string[] expected = [Json(single), Json(batch), Json(single)];
        journal.Tell(new ReplayMessages(1, long.MaxValue, long.MaxValue, "old/kvm-vm1", TestActor));
        var replayed = new[] { 0, 1, 2 }.Select(_ => ExpectMsg<ReplayedMessage>(TimeSpan.FromSeconds(20)).Persistent).ToList();
        ExpectMsg<RecoverySuccess>();
        Assert.Equal(expected, replayed.Select(p => Json((Domain.IDomainEvent)p.Payload)));
        Assert.Equal(["old", "old", "new"], replayed.Select(p => p.WriterGuid));
        var read = new List<RunEvent>();
        await foreach (var e in RunLog.ReadAsync(store, "old")) read.Add(e);
        Assert.Equal(expected, read.Select(e => Json(e.Event)));
        Assert.Equal([1L, 2, 3], read.Select(e => e.Version));
    }

    private static string Json(Domain.IDomainEvent e) => DomainEventSerializer.ToJson(e).GetRawText();
}
