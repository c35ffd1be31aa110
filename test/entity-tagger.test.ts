import nlp from 'compromise';
import { tagNames } from '../lib/models/entity-tagger';
import { sentencesThatMayName } from '../lib/models/name-sentences';

/** What the extractor reads from a tagged text: people, places and organisations. */
const names = (doc: ReturnType<typeof nlp>) => ({
  people: doc.people().out('array') as string[],
  places: doc.places().out('array') as string[],
  organizations: doc.organizations().out('array') as string[],
});

// Names in every position the rules care about: full names, honorifics, possessives, names that are
// also months or words, acronyms, organisations by suffix, places after prepositions, lowercase chat.
const SAMPLE = [
  'Bob Smith met Dr. Jane Goodall at Google in New York City.',
  'Microsoft and the United Nations signed an agreement in Paris with Angela Merkel.',
  'I went to the support group in Boston with Melanie yesterday.',
  "Caroline's sister May moved to Porto in May, and Will said he will visit her in April.",
  'Rich bought a rich chocolate cake for Mr. Brown and Mrs. Patel on Friday.',
  'The LGBTQ center near Lisbon hired Ana Silva, a former NASA engineer, last week.',
  'i met john and sarah at the mall, then we drove to san francisco.',
  'According to the notes, the budget review went well, although two questions about costs are still open.',
  'Acme Corp. and Globex Inc. merged; the new company is based in Austin, Texas.',
  'Professor Albert Einstein lectured at Princeton University and at the Sorbonne.',
  'The 5 GB file from GitHub took 3 seconds to download in Madeira.',
  'Sofia prefers the museum in Faro to the one in Coimbra, mostly for the view.',
  'Hey Mel! Good to see you! How have you been? Did Jordan and Taylor make it to the Lakers game?',
  'Uber-fast unique id generation, for Node.js and the browser.',
  'Barack Obama, the former president, spoke with Queen Elizabeth in London on Tuesday.',
  'We stayed at the Hilton on Fifth Avenue, next to St. Patrick\'s Cathedral, before flying to Tokyo.',
  // Contractions (a matched term may hide the next one) in front of names.
  "We've met Mr. O'Brien in Dublin, haven't we? I'd say John's been to Bank of America twice.",
  "They're moving to San Diego in June; she'll join Lockheed Martin and he's staying with Dr. Ruiz.",
];

describe('entity tagger (compromise trimmed to what names need)', () => {
  it.each(SAMPLE)('finds the same names as compromise’s full tagger: %s', (text) => {
    expect(names(tagNames(text))).toEqual(names(nlp(text)));
  });

  it('finds people, places and organisations', () => {
    const found = names(tagNames('Bob Smith met Dr. Jane Goodall at Google in New York City.'));
    expect(found.people).toEqual(['Bob Smith', 'Dr. Jane Goodall']);
    expect(found.places.map((place) => place.replace(/\.$/, ''))).toEqual(['New York City']);
    expect(found.organizations).toEqual(['Google']);
  });

  it('works when compromise has tagged text before it (its rules are then already parsed)', () => {
    jest.isolateModules(() => {
      const fresh = require('compromise') as typeof nlp;
      const text = SAMPLE[0]!;
      const before = names(fresh(text));
      const { tagNames: freshTagNames } = require('../lib/models/entity-tagger') as typeof import('../lib/models/entity-tagger');
      expect(names(freshTagNames(text))).toEqual(before);
    });
  });

  it('leaves compromise usable as before (its own tagger is not changed)', () => {
    tagNames('Melanie visited Sintra.');
    expect(names(nlp('Melanie visited Sintra with Bob Smith.')).people).toEqual(['Melanie', 'Bob Smith.']);
  });
});

// Sentences the filter drops and keeps side by side: chat small talk, names only in lower case, in
// accented or multi-word form, after a capitalised word the lexicon knows, or by their neighbours.
const MIXED = [
  "That sounds great! I love painting too. Yesterday i met caroline at the park, and it was lovely.",
  'According to the notes, the budget went well. Near the market there is a small bakery. joão prefers porto.',
  'Thanks! We went to see the beatles tribute last night. Then we had dinner at the steakhouse.',
  'It was fun. Me & my friends met at 221 baker street. The weather was nice in March.',
  'I will. Will you come too? The party is on Friday. Rock n roll all night!',
  "Honestly it's been a long week. The GitHub outage hit us. We moved the release to Monday.",
  'Hey! How are you? My sister May and dr ruiz are visiting from the US next week.',
  // Names made by an ampersand, an "n" or a number with lower-case words around them.
  'That was fun. We need a good dance floor with enough bounce for me & my students.',
  'ok. we went to the rock n roll hall, then to smith n sons. what a day.',
  'yes. we met at motel 6 and stayed at 221 baker street. it rained.',
  'sure. | api | n replicas behind a load balancer |',
  'It was hot. we flew to são paulo, then to new york. nice.',
];

describe('sentences that may hold a name (what the tagger is given)', () => {
  it.each([...SAMPLE, ...MIXED])('leaves the names compromise finds in the whole text: %s', (text) => {
    expect(names(tagNames(sentencesThatMayName(text)))).toEqual(names(nlp(text)));
  });

  it('drops the sentences that cannot hold one', () => {
    expect(sentencesThatMayName(MIXED[0]!)).toBe('Yesterday i met caroline at the park, and it was lovely.');
    expect(sentencesThatMayName(MIXED[1]!)).toBe('joão prefers porto.');
    expect(sentencesThatMayName('That sounds great! I love painting too.')).toBe('');
    // A text whose every sentence may hold one is passed through as it is.
    expect(sentencesThatMayName(SAMPLE[0]!)).toBe(SAMPLE[0]);
  });
});
