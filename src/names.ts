import { randomFillSync } from 'node:crypto';

// 256 short, distinct words: four of them name a task, one per byte of its id folded to four bytes.
const WORDS = (
  'acid alpha amber anchor angel apple april arrow aspen atlas autumn bacon badge bagel ' +
  'bamboo banjo barley basil beach beetle berry bison black blossom blue bravo bread breeze ' +
  'bronze brook bucket butter cabin cactus camel candle canyon carbon cedar cello chalk ' +
  'charlie cherry chess cider citrus clover cobalt cocoa comet copper coral cotton cow crane ' +
  'cricket crystal cup daisy dakota delta denim desert diamond dingo dolphin domino dragon ' +
  'dream drum eagle earth echo eight elbow ember emerald engine equal fennel ' +
  'fern finch fire fish flame flint florida flower fog forest fox frost fruit ' +
  'galaxy garden garlic gecko ginger glacier glass golf grape gravity green guitar hamster ' +
  'harbor harvest hawk hazel helium heron hickory hill honey hotel iceberg igloo ' +
  'indigo iris island ivory jade jasmine jazz jelly juliet june juniper kettle kilo kiwi koala ' +
  'lake lantern lava lemon lilac lima lime linen lion lobster lotus lunar magnet mango maple ' +
  'marble march mars meadow melon mercury meteor mike mint mirror mocha moon moss mountain ' +
  'music nectar neptune nest nickel nine north november nutmeg oak ocean olive onion opal ' +
  'orange orbit orchid oscar otter owl oxygen paper papa parrot peach pearl pebble pepper ' +
  'piano pine planet plum polar pony poppy potato prairie pumpkin quartz quebec rabbit ' +
  'radar rain raven red reef river robin rocket romeo ruby saffron salmon sand saturn ' +
  'sierra silver sky snow solar spring spruce star stone storm summer sun sunset swan ' +
  'tango tea thunder tiger timber topaz tulip tundra twelve uniform valley velvet venus ' +
  'victor violet walnut water willow winter wolf yankee yellow zebra zulu zinc'
).split(' ');

/** Random bytes handed out 16 at a time, refilled 256 ids at once: one call into the CSPRNG per 256 ids. */
const POOL = Buffer.alloc(16 * 256);
let next = POOL.length;

/**
 * A new task id and its name: a version 4 uuid as 32 hex digits (ormq_task.id is char(32)) and
 * `humanName` of it, folded from the same bytes rather than parsed back out of the hex.
 */
export function newTask(): { id: string; name: string } {
  if (next === POOL.length) {
    randomFillSync(POOL);
    next = 0;
  }
  const at = next;
  next += 16;
  POOL[at + 6] = (POOL[at + 6]! & 0x0f) | 0x40;
  POOL[at + 8] = (POOL[at + 8]! & 0x3f) | 0x80;
  const w = (i: number) => WORDS[POOL[at + i]! ^ POOL[at + i + 1]! ^ POOL[at + i + 2]! ^ POOL[at + i + 3]!]!;
  return { id: POOL.toString('hex', at, at + 16), name: `${w(0)}-${w(4)}-${w(8)}-${w(12)}` };
}

/** A task id: a uuid as 32 hex digits (ormq_task.id is char(32)). */
export function newTaskId(): string {
  return newTask().id;
}

/** The value of one hex digit from its character code; 0 for anything else (or past the end). */
function hexDigit(c: number): number {
  if (c >= 48 && c <= 57) return c - 48;
  if (c >= 97 && c <= 102) return c - 87;
  if (c >= 65 && c <= 70) return c - 55;
  return 0;
}

/** A readable name from a task id (32 hex digits): its 16 bytes folded to four, one word each. */
export function humanName(id: string): string {
  const byte = (k: number) => (hexDigit(id.charCodeAt(2 * k)) << 4) | hexDigit(id.charCodeAt(2 * k + 1));
  const w = (i: number) => WORDS[byte(i) ^ byte(i + 1) ^ byte(i + 2) ^ byte(i + 3)]!;
  return `${w(0)}-${w(4)}-${w(8)}-${w(12)}`;
}

/** The words of `humanName`, in the order its bytes index them. */
export const NAME_WORDS: readonly string[] = WORDS;
