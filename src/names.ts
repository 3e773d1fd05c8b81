import { randomUUID } from 'node:crypto';

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

/** A task id: a uuid as 32 hex digits (ormq_task.id is char(32)). */
export function newTaskId(): string {
  return randomUUID().replaceAll('-', '');
}

/** A readable name from a task id: its 16 bytes folded to four, one word each. */
export function humanName(id: string): string {
  const words: string[] = [];
  for (let i = 0; i < 4; i++) {
    let byte = 0;
    for (let j = 0; j < 4; j++) byte ^= parseInt(id.slice((i * 4 + j) * 2, (i * 4 + j) * 2 + 2), 16) || 0;
    words.push(WORDS[byte]!);
  }
  return words.join('-');
}

export const WORD_COUNT = WORDS.length;

/** The words of `humanName`, in the order its bytes index them. */
export const NAME_WORDS: readonly string[] = WORDS;
