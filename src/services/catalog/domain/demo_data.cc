#include "services/catalog/domain/demo_data.h"

#include <array>
#include <random>
#include <string>

#include <fmt/format.h>

namespace agora::catalog {
namespace {

struct Leaf {
  const char* category_id;
  std::vector<const char*> nouns;
  std::vector<const char*> brands;
  int64_t min_price, max_price;  // minor units
  std::vector<std::pair<const char*, std::vector<const char*>>> attributes;
};

const std::vector<Leaf>& Leaves() {
  static const std::vector<Leaf> leaves = {
      {"cat_00000000000000000000000101", {"smartphone", "phone", "phone case", "charger", "screen protector"},
       {"Samsung", "Apple", "Google", "Nokia", "Fairphone", "Motorola"}, 900, 120000,
       {{"storage", {"64 GB", "128 GB", "256 GB", "512 GB"}}, {"colour", {"black", "white", "blue", "green"}}}},
      {"cat_00000000000000000000000102", {"laptop", "desktop computer", "monitor", "keyboard", "mouse", "tablet"},
       {"Lenovo", "Dell", "HP", "Apple", "Asus", "Acer"}, 1500, 250000,
       {{"memory", {"8 GB", "16 GB", "32 GB"}}, {"screen", {"13 inch", "14 inch", "15 inch", "27 inch"}}}},
      {"cat_00000000000000000000000103", {"headphones", "speaker", "turntable", "amplifier", "earbuds"},
       {"Sony", "Bose", "Sennheiser", "JBL", "Marshall", "Technics"}, 1500, 90000,
       {{"connection", {"bluetooth", "wired", "wifi"}}, {"colour", {"black", "silver", "white"}}}},
      {"cat_00000000000000000000000104", {"camera", "lens", "tripod", "camera bag", "flash"},
       {"Canon", "Nikon", "Fujifilm", "Sony", "Olympus", "Leica"}, 2000, 300000,
       {{"mount", {"EF", "Z", "X", "E", "M"}}, {"sensor", {"full frame", "APS-C", "micro four thirds"}}}},
      {"cat_00000000000000000000000105", {"game console", "controller", "video game", "handheld console"},
       {"Nintendo", "Sony", "Microsoft", "Valve", "Sega"}, 1000, 60000,
       {{"platform", {"Switch", "PlayStation 5", "Xbox Series X", "PC"}}}},
      {"cat_00000000000000000000000201", {"dress", "blouse", "coat", "skirt", "jumper", "handbag"},
       {"Zara", "Mango", "COS", "Levi's", "Uniqlo", "Patagonia"}, 800, 40000,
       {{"size", {"XS", "S", "M", "L", "XL"}}, {"colour", {"red", "navy", "black", "beige", "green"}},
        {"material", {"cotton", "wool", "linen", "silk"}}}},
      {"cat_00000000000000000000000202", {"jacket", "shirt", "jeans", "suit", "hoodie", "raincoat"},
       {"Levi's", "Barbour", "Uniqlo", "Hugo Boss", "Carhartt", "Patagonia"}, 900, 50000,
       {{"size", {"S", "M", "L", "XL", "XXL"}}, {"colour", {"grey", "navy", "black", "olive"}}}},
      {"cat_00000000000000000000000203", {"trainers", "boots", "sandals", "running shoes", "loafers"},
       {"Nike", "Adidas", "Dr. Martens", "Birkenstock", "Asics", "Veja"}, 1500, 30000,
       {{"size", {"38", "39", "40", "41", "42", "43", "44", "45"}}, {"colour", {"white", "black", "brown"}}}},
      {"cat_00000000000000000000000204", {"watch", "necklace", "ring", "bracelet", "earrings"},
       {"Seiko", "Casio", "Tissot", "Pandora", "Swatch", "Citizen"}, 1000, 500000,
       {{"material", {"steel", "silver", "gold", "titanium"}}}},
      {"cat_00000000000000000000000301", {"armchair", "sofa", "dining table", "bookcase", "desk", "wardrobe"},
       {"IKEA", "Habitat", "Vitra", "Muuto", "HAY", "Ercol"}, 2000, 200000,
       {{"material", {"oak", "pine", "walnut", "steel", "velvet"}}, {"colour", {"grey", "green", "natural", "white"}}}},
      {"cat_00000000000000000000000302", {"coffee machine", "stand mixer", "cast iron pan", "knife set", "kettle"},
       {"KitchenAid", "Le Creuset", "De'Longhi", "Smeg", "Wüsthof", "Bialetti"}, 1200, 80000,
       {{"colour", {"red", "cream", "black", "steel"}}}},
      {"cat_00000000000000000000000303", {"lawn mower", "garden bench", "plant pot", "hedge trimmer", "barbecue"},
       {"Bosch", "Gardena", "Weber", "Husqvarna", "Fiskars"}, 1000, 90000,
       {{"power", {"electric", "cordless", "petrol", "manual"}}}},
      {"cat_00000000000000000000000304", {"cordless drill", "tool set", "circular saw", "workbench", "sander"},
       {"Makita", "DeWalt", "Bosch", "Stanley", "Festool", "Milwaukee"}, 1500, 70000,
       {{"voltage", {"12 V", "18 V", "36 V"}}}},
      {"cat_00000000000000000000000401", {"novel", "cookbook", "biography", "atlas", "poetry collection", "comic"},
       {"Penguin", "Faber", "Vintage", "Picador", "Bloomsbury"}, 300, 6000,
       {{"language", {"English", "French", "German", "Spanish"}}, {"format", {"hardback", "paperback"}}}},
      {"cat_00000000000000000000000402", {"vinyl record", "CD box set", "guitar", "keyboard piano", "ukulele"},
       {"Fender", "Yamaha", "Gibson", "Roland", "Blue Note", "Deutsche Grammophon"}, 800, 150000,
       {{"genre", {"jazz", "rock", "classical", "soul", "electronic"}}}},
      {"cat_00000000000000000000000403", {"blu-ray", "DVD box set", "film poster", "projector"},
       {"Criterion", "Studio Ghibli", "BFI", "Epson", "BenQ"}, 500, 60000,
       {{"region", {"A", "B", "free"}}}},
      {"cat_00000000000000000000000501", {"road bike", "mountain bike", "bike helmet", "bike lights", "saddle"},
       {"Trek", "Specialized", "Brompton", "Canyon", "Cube", "Giant"}, 1500, 400000,
       {{"frame size", {"S", "M", "L", "52 cm", "56 cm"}}, {"colour", {"red", "black", "blue", "orange"}}}},
      {"cat_00000000000000000000000502", {"tent", "sleeping bag", "backpack", "camping stove", "head torch"},
       {"MSR", "Vaude", "Osprey", "Primus", "Petzl", "Fjällräven"}, 1000, 60000,
       {{"capacity", {"1 person", "2 person", "4 person", "40 l", "65 l"}}}},
      {"cat_00000000000000000000000503", {"dumbbells", "yoga mat", "rowing machine", "kettlebell", "treadmill"},
       {"Concept2", "Decathlon", "Reebok", "Manduka", "Technogym"}, 800, 150000,
       {{"weight", {"4 kg", "8 kg", "12 kg", "16 kg", "20 kg"}}}},
      {"cat_00000000000000000000000601", {"wooden train set", "teddy bear", "doll house", "building blocks", "puzzle"},
       {"LEGO", "Brio", "Playmobil", "Steiff", "Ravensburger"}, 500, 30000,
       {{"age", {"1+", "3+", "6+", "8+", "12+"}}}},
      {"cat_00000000000000000000000602", {"board game", "card game", "chess set", "strategy game"},
       {"Catan", "Asmodee", "Hasbro", "Ravensburger", "Z-Man"}, 500, 15000,
       {{"players", {"2", "2-4", "3-6", "1-5"}}}},
      {"cat_00000000000000000000000701", {"oil painting", "print", "sculpture", "watercolour", "photograph"},
       {"signed", "framed", "limited edition", "original"}, 2000, 500000,
       {{"style", {"abstract", "landscape", "portrait", "still life"}}}},
      {"cat_00000000000000000000000702", {"coin collection", "stamp album", "silver coin", "banknote set"},
       {"Royal Mint", "Monnaie de Paris", "Stanley Gibbons"}, 300, 200000,
       {{"era", {"Victorian", "1920s", "1960s", "modern"}}}},
      {"cat_00000000000000000000000703", {"mantel clock", "writing desk", "oil lamp", "tea set", "mirror"},
       {"Georgian", "Art Deco", "Victorian", "Edwardian", "Mid-century"}, 2000, 300000,
       {{"material", {"mahogany", "brass", "porcelain", "silver"}}}},
      {"cat_00000000000000000000000801", {"alloy wheels", "roof box", "car battery", "seat covers", "dash camera"},
       {"Thule", "Bosch", "Garmin", "Michelin", "Varta"}, 1500, 120000,
       {{"fits", {"Golf", "Focus", "Clio", "Corolla", "Model 3"}}}},
      {"cat_00000000000000000000000802", {"motorcycle helmet", "leather jacket", "exhaust", "tank bag"},
       {"Shoei", "Arai", "Dainese", "Akrapovič", "Givi"}, 2000, 150000,
       {{"size", {"S", "M", "L", "XL"}}}},
  };
  return leaves;
}

constexpr std::array<const char*, 12> kAdjectives = {"vintage", "classic", "compact", "lightweight", "handmade",
                                                     "portable", "premium", "retro", "sturdy", "elegant",
                                                     "modern", "rare"};
constexpr std::array<const char*, 8> kPhrases = {
    "Barely used and kept in a smoke-free home.", "Comes with the original box and receipt.",
    "Small scuff on one side, shown in the photos.", "Fully working, tested this week.",
    "Collection preferred, but happy to post.", "Selling because I am moving abroad.",
    "A gift that was never used.", "Serviced recently; everything works as it should."};
constexpr std::array<const char*, 5> kConditionsByWeight = {"new", "like_new", "good", "good", "fair"};

}  // namespace

std::vector<ListingInput> DemoListings(size_t count, uint64_t seed, uint64_t index_base) {
  std::mt19937_64 rng(seed * 1'000'003 + index_base);
  auto pick = [&](size_t n) { return static_cast<size_t>(rng() % n); };
  const auto& leaves = Leaves();
  std::vector<ListingInput> out;
  out.reserve(count);
  for (size_t i = 0; i < count; ++i) {
    const Leaf& leaf = leaves[pick(leaves.size())];
    const char* noun = leaf.nouns[pick(leaf.nouns.size())];
    const char* brand = leaf.brands[pick(leaf.brands.size())];
    const char* adjective = kAdjectives[pick(kAdjectives.size())];
    ListingInput in;
    in.title = fmt::format("{} {} {}", brand, adjective, noun);
    in.title->front() = static_cast<char>(std::toupper(static_cast<unsigned char>(in.title->front())));
    in.description = fmt::format("{} {} {} in {} condition. {} {}", adjective, brand, noun,
                                 kConditionsByWeight[pick(kConditionsByWeight.size())],
                                 kPhrases[pick(kPhrases.size())], kPhrases[pick(kPhrases.size())]);
    in.description->front() =
        static_cast<char>(std::toupper(static_cast<unsigned char>(in.description->front())));
    // Prices cluster on psychological endings (..99, ..50, ..00).
    const int64_t span = leaf.max_price - leaf.min_price;
    int64_t price = leaf.min_price + static_cast<int64_t>(rng() % static_cast<uint64_t>(span));
    constexpr std::array<int64_t, 3> kEndings = {99, 50, 0};
    price = price / 100 * 100 + kEndings[pick(kEndings.size())];
    in.price = Money{std::max<int64_t>(price, 100), "EUR"};
    in.quantity = static_cast<int64_t>(pick(10) == 0 ? 0 : 1 + pick(pick(4) == 0 ? 50 : 3));
    in.category_id = leaf.category_id;
    in.condition = kConditions[pick(std::size(kConditions))];
    std::vector<std::pair<std::string, std::string>> attributes{{"brand", brand}};
    for (const auto& [key, values] : leaf.attributes) {
      if (pick(4) != 0) attributes.emplace_back(key, values[pick(values.size())]);
    }
    in.attributes = std::move(attributes);
    in.images = std::vector<std::string>{
        fmt::format("https://images.agora.example/demo/{}/{}.jpg", index_base + i, 1)};
    in.shipping = std::vector<ShippingOption>{{"standard", {490, "EUR"}, 2, 5}};
    if (pick(3) == 0) in.shipping->push_back({"pickup", {0, "EUR"}, 0, 0});
    out.push_back(std::move(in));
  }
  return out;
}

}  // namespace agora::catalog
