/**
 * A strict reader for the Prometheus text exposition format (0.0.4), enough to check what
 * toPrometheus writes: every line is a HELP, a TYPE or a sample of a declared family.
 */
export interface Sample {
  readonly name: string;
  readonly labels: Record<string, string>;
  readonly value: number;
}

export interface Exposition {
  readonly help: Map<string, string>;
  readonly types: Map<string, string>;
  readonly samples: Sample[];
}

const NAME = '[a-zA-Z_:][a-zA-Z0-9_:]*';
const HELP = new RegExp(`^# HELP (${NAME}) (.*)$`);
const TYPE = new RegExp(`^# TYPE (${NAME}) (counter|gauge|summary|histogram|untyped)$`);
const SAMPLE = new RegExp(`^(${NAME})(?:\\{(.*)\\})? (\\S+)$`);
const LABEL = /^([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\[\\"n])*)"(,|$)/;

function unescape(value: string): string {
  return value.replace(/\\([\\"n])/g, (_, c: string) => (c === 'n' ? '\n' : c));
}

function parseLabels(text: string, line: string): Record<string, string> {
  const labels: Record<string, string> = {};
  let rest = text;
  while (rest.length > 0) {
    const match = LABEL.exec(rest);
    if (!match) throw new Error(`bad labels in line: ${JSON.stringify(line)}`);
    if (match[1]! in labels) throw new Error(`duplicate label ${match[1]} in line: ${line}`);
    labels[match[1]!] = unescape(match[2]!);
    rest = rest.slice(match[0].length);
  }
  return labels;
}

/** The family a sample belongs to: summaries also own NAME_sum and NAME_count. */
function familyOf(name: string, types: Map<string, string>): string | undefined {
  if (types.has(name)) return name;
  for (const suffix of ['_sum', '_count']) {
    const base = name.endsWith(suffix) ? name.slice(0, -suffix.length) : null;
    if (base && types.get(base) === 'summary') return base;
  }
  return undefined;
}

export function parsePrometheus(text: string): Exposition {
  if (!text.endsWith('\n')) throw new Error('exposition must end with a newline');
  const help = new Map<string, string>();
  const types = new Map<string, string>();
  const samples: Sample[] = [];
  for (const line of text.slice(0, -1).split('\n')) {
    let match: RegExpExecArray | null;
    if ((match = HELP.exec(line))) {
      if (help.has(match[1]!)) throw new Error(`second HELP for ${match[1]}`);
      help.set(match[1]!, match[2]!);
    } else if ((match = TYPE.exec(line))) {
      if (types.has(match[1]!)) throw new Error(`second TYPE for ${match[1]}`);
      if (!help.has(match[1]!)) throw new Error(`TYPE before HELP for ${match[1]}`);
      types.set(match[1]!, match[2]!);
    } else if ((match = SAMPLE.exec(line))) {
      const family = familyOf(match[1]!, types);
      if (!family) throw new Error(`sample of an undeclared family: ${line}`);
      const value = Number(match[3]);
      if (Number.isNaN(value) && match[3] !== 'NaN') throw new Error(`bad value in line: ${line}`);
      samples.push({ name: match[1]!, labels: match[2] ? parseLabels(match[2], line) : {}, value });
    } else {
      throw new Error(`unparseable line: ${JSON.stringify(line)}`);
    }
  }
  return { help, types, samples };
}

/** The value of the one sample with this name and these labels (exactly). */
export function sampleValue(exposition: Exposition, name: string, labels: Record<string, string> = {}): number | undefined {
  const found = exposition.samples.filter(
    (s) => s.name === name && JSON.stringify(Object.entries(s.labels).sort()) === JSON.stringify(Object.entries(labels).sort()),
  );
  if (found.length > 1) throw new Error(`${found.length} samples of ${name} ${JSON.stringify(labels)}`);
  return found[0]?.value;
}
