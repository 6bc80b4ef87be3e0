using ActorSim.Domain;
using ActorSim.Domain.Kernel;
using ActorSim.Domain.Kvm;
using ActorSim.Domain.Mm;
using ActorSim.Domain.Stage2;

namespace ActorSim.Persistence.Serialization;

/// <summary>The decision events (<c>stage2_fault_resolved</c>, <c>stage2_faults_resolved</c>) as a
/// compact binary record, for the journal's stored entries (<see cref="Journal.JournalEntryBinary"/>):
/// every field of every record — the full inputs and the outcome, as the JSON carries them — without
/// the JSON's names. A record's JSON is ~950 bytes, this ~60–110: reading a run back from the database
/// was bound by the rows' size (docs/BENCHMARKS.md: 1,039-byte rows read at 255–272 k rows/s, 250-byte
/// ones at 513–667 k). Event-log files and every other place keep the JSON (the contract,
/// event-log-format.md); an entry's JSON is made again from the event when something asks for it.
/// <para>Layout: version byte (1); the event's kind (0 <c>stage2_fault_resolved</c>, 1
/// <c>stage2_faults_resolved</c>); the record count (LEB128); per record two flag bytes, then the fields
/// in <see cref="FaultInputs"/>' order and the outcome's (the op's number also holds the S1PTW and CM
/// bits above its low byte, <see cref="OpS1ptw"/>, <see cref="OpCm"/>, and the VM's <see cref="OpNisvToUser"/>). Integers are LEB128 (unsigned; zig-zag for
/// the signed ones); enums by their numeric values — part of this format, pinned by a test; a memslot,
/// VMA, policy or VM name equal to the record before's is not written again (a batch's records share
/// them).</para></summary>
internal static class CompactDecisions
{
    public const byte Version = 1;

    // First flag byte.
    private const byte FaultIsPerm = 1, HasSlot = 2, SameSlot = 4, HasVma = 8, SameVma = 16, HasExisting = 32, VmHasMte = 64, TopUpFails = 128;
    // Second flag byte.
    private const byte HasLeaf = 1, SameVm = 2, SamePolicy = 4, IsMapMemory = 8, Writable = 16, Fwb = 32, Dic = 64, Nisv = 128;
    // The op's number: the op in its low byte (any value, as the JSON keeps one without a name) and,
    // above it, the syndrome bits that came after both flag bytes were full. A record written before
    // them has none, so it reads as it was. Beside them the VM's KVM_CAP_ARM_NISV_TO_USER
    // (FaultInputs.NisvToUser), which came later still.
    private const ulong OpS1ptw = 0x100, OpCm = 0x200, OpNisvToUser = 0x400;

    public static bool Supports(IDomainEvent e) => e is Stage2FaultResolved or Stage2FaultsResolved;

    public static byte[] Write(IDomainEvent e)
    {
        var (kind, records) = e switch
        {
            Stage2FaultResolved one => (Single, new[] { one.Decision }),
            Stage2FaultsResolved batch => (Batch, batch.Decisions),
            _ => throw new ArgumentException($"{e.GetType().Name} is not a decision event", nameof(e)),
        };
        var w = new Writer(16 + 96 * records.Length);
        w.Byte(Version);
        w.Byte(kind);
        w.UInt((ulong)records.Length);
        FaultInputs? previous = null;
        foreach (var r in records)
        {
            WriteRecord(ref w, r, previous);
            previous = r.Inputs;
        }
        return w.ToArray();
    }

    private const byte Single = 0, Batch = 1;

    /// <summary>The event stored under <paramref name="alias"/> at schema <paramref name="version"/> (a
    /// journal entry's type, an Akka manifest): a compact record is written at its alias' current
    /// version, the only one it has, and must be of that alias.</summary>
    public static IDomainEvent Read(string alias, int version, ReadOnlySpan<byte> bytes)
    {
        if (version != DomainEventSerializer.VersionOf(alias))
            throw new InvalidDataException($"compact decision record: a {alias} at schema version {version} (this build writes {DomainEventSerializer.VersionOf(alias)})");
        var e = Read(bytes);
        var stored = DomainEventSerializer.AliasOf(e.GetType());
        return stored == alias ? e : throw new InvalidDataException($"compact decision record: a {stored} under the type {alias}");
    }

    /// <summary>The event back; a record of another version or kind, cut short or with bytes left over
    /// is refused (<see cref="InvalidDataException"/>).</summary>
    public static IDomainEvent Read(ReadOnlySpan<byte> bytes)
    {
        var r = new Reader(bytes);
        var version = r.Byte();
        if (version != Version) throw new InvalidDataException($"compact decision record: unknown version {version}");
        var kind = r.Byte();
        if (kind is not (Single or Batch)) throw new InvalidDataException($"compact decision record: unknown kind {kind}");
        var count = r.UInt();
        if (count > (ulong)bytes.Length) throw new InvalidDataException($"compact decision record: {count} records in {bytes.Length} bytes");
        var records = new DecisionRecord[count];
        FaultInputs? previous = null;
        for (var i = 0; i < records.Length; i++) previous = (records[i] = ReadRecord(ref r, previous)).Inputs;
        if (!r.AtEnd) throw new InvalidDataException("compact decision record: bytes after its records");
        if (kind == Single && records.Length != 1) throw new InvalidDataException($"compact decision record: {records.Length} records in a single decision's event");
        return kind == Single ? new Stage2FaultResolved(records[0]) : new Stage2FaultsResolved(records);
    }

    private static void WriteRecord(ref Writer w, DecisionRecord record, FaultInputs? previous)
    {
        var i = record.Inputs;
        var o = record.Outcome;
        var sameSlot = i.Slot is not null && previous is not null && Equals(i.Slot, previous.Slot);
        var sameVma = i.Vma is not null && previous is not null && Equals(i.Vma, previous.Vma);
        var samePolicy = previous is not null && Equals(i.Policy, previous.Policy);
        var sameVm = previous is not null && i.Vm == previous.Vm;
        w.Byte((byte)((i.FaultIsPerm ? FaultIsPerm : 0) | (i.Slot is null ? 0 : HasSlot) | (sameSlot ? SameSlot : 0) | (i.Vma is null ? 0 : HasVma)
            | (sameVma ? SameVma : 0) | (i.ExistingLeaf is null ? 0 : HasExisting) | (i.VmHasMte ? VmHasMte : 0) | (i.MemcacheTopUpFails ? TopUpFails : 0)));
        w.Byte((byte)((o.Leaf is null ? 0 : HasLeaf) | (sameVm ? SameVm : 0) | (samePolicy ? SamePolicy : 0) | (i.Pfn.IsMapMemory ? IsMapMemory : 0)
            | (i.Pfn.Writable ? Writable : 0) | (i.Policy.Cpu.Fwb ? Fwb : 0) | (i.Policy.Cpu.Dic ? Dic : 0) | (i.Nisv ? Nisv : 0)));
        if (!sameVm) w.String(i.Vm);
        w.Int(i.Vcpu);
        w.UInt(i.Gpa);
        w.UInt((byte)i.Op | (i.S1ptw ? OpS1ptw : 0) | (i.Cm ? OpCm : 0) | (i.NisvToUser ? OpNisvToUser : 0));
        w.Int(i.FaultLevel);
        if (i.Slot is { } s && !sameSlot)
        {
            w.Int(s.Id);
            w.UInt(s.BaseGpa);
            w.UInt(s.Size);
            w.UInt(s.UserspaceAddr);
            w.UInt((ulong)s.Flags);
        }
        w.UInt(i.Hva);
        if (i.Vma is { } v && !sameVma)
        {
            w.UInt(v.Start);
            w.UInt(v.End);
            w.UInt((ulong)v.Flags);
            w.UInt(v.PgOff);
            w.UInt((ulong)v.S1);
        }
        w.UInt(i.PfnHva);
        w.UInt((ulong)i.Pfn.Status);
        w.UInt(i.Pfn.Pfn);
        if (!samePolicy)
        {
            w.Int((int)i.Policy.RuleSet);
            w.Int((int)i.Policy.WordSize);
        }
        w.Int(i.IpaBits);
        w.UInt(i.SampledSeq);
        w.UInt(i.SeqAtLock);
        w.Int(i.InProgressAtLock);
        if (i.ExistingLeaf is { } existing) WriteLeaf(ref w, existing);
        w.UInt((ulong)o.Result);
        w.Int((int)o.Errno);
        if (o.Leaf is { } leaf) WriteLeaf(ref w, leaf);
        w.UInt((ulong)o.Prot);
        w.UInt((ulong)o.Path);
    }

    private static DecisionRecord ReadRecord(ref Reader r, FaultInputs? previous)
    {
        var f1 = r.Byte();
        var f2 = r.Byte();
        if ((f1 & (SameSlot | SameVma)) != 0 || (f2 & (SameVm | SamePolicy)) != 0)
        {
            if (previous is null) throw new InvalidDataException("compact decision record: the first record refers to a record before it");
            if ((f1 & SameSlot) != 0 && previous.Slot is null || (f1 & SameVma) != 0 && previous.Vma is null)
                throw new InvalidDataException("compact decision record: a memslot or VMA the record before does not have");
        }
        var vm = (f2 & SameVm) != 0 ? previous!.Vm : VmNames.Intern(r.String());
        var vcpu = r.Int();
        var gpa = r.UInt();
        var opWord = r.UInt();
        if (opWord > (0xFF | OpS1ptw | OpCm | OpNisvToUser)) throw new InvalidDataException($"compact decision record: {opWord} is no op with its syndrome and VM bits");
        var op = (AccessOp)(byte)opWord;
        var faultLevel = r.Int();
        Memslot? slot = null;
        if ((f1 & HasSlot) != 0)
            slot = (f1 & SameSlot) != 0 ? previous!.Slot : new Memslot(r.Int(), r.UInt(), r.UInt(), r.UInt(), (MemslotFlags)r.UInt32());
        var hva = r.UInt();
        VmaSnapshot? vma = null;
        if ((f1 & HasVma) != 0)
            vma = (f1 & SameVma) != 0 ? previous!.Vma : new VmaSnapshot(r.UInt(), r.UInt(), (VmFlags)r.UInt(), r.UInt(), (MairIndex)r.Byte8());
        var pfnHva = r.UInt();
        var pfn = new PfnLookup((PfnStatus)r.Byte8(), r.UInt(), (f2 & IsMapMemory) != 0, (f2 & Writable) != 0);
        var cpu = new CpuFeatures((f2 & Fwb) != 0, (f2 & Dic) != 0);
        var policy = (f2 & SamePolicy) != 0 ? previous!.Policy : DecisionRecordConverter.Policies.Get((RuleSet)r.Int(), cpu, (WordSize)r.Int());
        if (policy.Cpu != cpu) throw new InvalidDataException("compact decision record: the CPU features differ from the policy it repeats");
        var ipaBits = r.Int();
        var sampled = r.UInt();
        var atLock = r.UInt();
        var inProgress = r.Int();
        Stage2Leaf? existing = (f1 & HasExisting) != 0 ? ReadLeaf(ref r) : null;
        var inputs = new FaultInputs(vm, vcpu, gpa, op, (f1 & FaultIsPerm) != 0, faultLevel, slot, hva, vma, pfnHva, pfn, policy,
            (f1 & VmHasMte) != 0, ipaBits, sampled, atLock, inProgress, existing, (f1 & TopUpFails) != 0, (f2 & Nisv) != 0,
            (opWord & OpS1ptw) != 0, (opWord & OpCm) != 0, (opWord & OpNisvToUser) != 0);
        var result = (FaultResult)r.Byte8();
        var errno = (Errno)r.Int();
        Stage2Leaf? leaf = (f2 & HasLeaf) != 0 ? ReadLeaf(ref r) : null;
        var outcome = new FaultOutcome(result, errno, leaf, (KvmPgtableProt)r.UInt(), (DecisionPath)r.Byte8());
        return new DecisionRecord(inputs, outcome);
    }

    private static void WriteLeaf(ref Writer w, Stage2Leaf leaf)
    {
        w.UInt(leaf.Gpa);
        w.Int(leaf.Level);
        w.UInt((ulong)leaf.Prot);
        w.UInt(leaf.Descriptor);
    }

    private static Stage2Leaf ReadLeaf(ref Reader r) => new(r.UInt(), r.Int(), (KvmPgtableProt)r.UInt(), r.UInt());

    /// <summary>One string per VM name (a run has a few): not one per record.</summary>
    private static readonly BytesMemo<string> VmNames = new(64);

    private struct Writer(int capacity)
    {
        private byte[] _buffer = new byte[capacity];
        private int _length;

        public void Byte(byte b)
        {
            if (_length == _buffer.Length) Array.Resize(ref _buffer, _buffer.Length * 2);
            _buffer[_length++] = b;
        }

        public void UInt(ulong v)
        {
            while (v >= 0x80)
            {
                Byte((byte)(v | 0x80));
                v >>= 7;
            }
            Byte((byte)v);
        }

        /// <summary>Zig-zag: small negative numbers stay short.</summary>
        public void Int(int v) => UInt((uint)((v << 1) ^ (v >> 31)));

        public void String(string s)
        {
            var bytes = System.Text.Encoding.UTF8.GetBytes(s);
            UInt((ulong)bytes.Length);
            foreach (var b in bytes) Byte(b);
        }

        public readonly byte[] ToArray() => _buffer.AsSpan(0, _length).ToArray();
    }

    private ref struct Reader(ReadOnlySpan<byte> bytes)
    {
        private readonly ReadOnlySpan<byte> _bytes = bytes;
        private int _position;

        public readonly bool AtEnd => _position == _bytes.Length;

        public byte Byte()
        {
            if (_position >= _bytes.Length) throw new InvalidDataException($"compact decision record: cut short ({_bytes.Length} bytes)");
            return _bytes[_position++];
        }

        public ulong UInt()
        {
            ulong v = 0;
            for (var shift = 0; shift < 64; shift += 7)
            {
                var b = Byte();
                v |= (ulong)(b & 0x7F) << shift;
                if ((b & 0x80) == 0) return v;
            }
            throw new InvalidDataException("compact decision record: a number longer than 10 bytes");
        }

        /// <summary>An enum stored as a number that must fit its byte-sized type.</summary>
        public byte Byte8()
        {
            var v = UInt();
            return v <= byte.MaxValue ? (byte)v : throw new InvalidDataException($"compact decision record: {v} out of range");
        }

        public uint UInt32()
        {
            var v = UInt();
            return v <= uint.MaxValue ? (uint)v : throw new InvalidDataException($"compact decision record: {v} out of range");
        }

        public int Int()
        {
            var z = UInt32();
            return (int)(z >> 1) ^ -(int)(z & 1);
        }

        public ReadOnlySpan<byte> String()
        {
            var n = UInt();
            if (n > (ulong)(_bytes.Length - _position)) throw new InvalidDataException($"compact decision record: cut short ({_bytes.Length} bytes)");
            var s = _bytes.Slice(_position, (int)n);
            _position += (int)n;
            return s;
        }
    }
}
